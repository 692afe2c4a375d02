package probes

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

	"github.com/icptrack/icptrack/flow"
)

func newTestDecoder() *decoder {
	return newDecoder(clock{offset: 1e18}, newNames(newMountTable("/nonexistent")), nil, true)
}

func opRecordBytes(r ipcOpRecord, payload []byte) []byte {
	b := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&r)), opRecordSize)...)
	return append(b, payload...)
}

func TestDecodeOpRecord(t *testing.T) {
	r := ipcOpRecord{
		Kind: uint8(ipcRecordKindRECORD_OP), Mechanism: uint8(ipcMechanismMECH_TCP), Op: uint8(ipcOpTypeOPER_RECEIVE),
		Flags: uint8(ipcOpFlagOPF_BLOCKED | ipcOpFlagOPF_TRUNCATED), Syscall: 0xffff, Family: 2,
		Pid: 10, Tid: 11, Ppid: 1, Fd: -1, StartNs: 100, EndNs: 350, Ret: -11, Sk: 0xffff8880deadbeef,
		Sport: 5000, Dport: 40000, Saddr: [16]uint8{127, 0, 0, 1}, Daddr: [16]uint8{127, 0, 0, 2}, PayloadLen: 3,
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Comm[0])), 16), "server")
	var ev flow.Event
	isOp, err := newTestDecoder().decode(opRecordBytes(r, []byte("abcXYZ")), &ev)
	if err != nil || !isOp {
		t.Fatalf("decode: %v, %v", isOp, err)
	}
	if ev.Mechanism != flow.TCP || ev.Op != flow.Receive || ev.Comm != "server" || ev.PID != 10 || ev.Result != -11 ||
		ev.Error != "EAGAIN" || !ev.Blocked || !ev.PayloadTruncated || string(ev.Payload) != "abc" ||
		ev.End.Sub(ev.Start) != 250 || ev.Local.String() != "127.0.0.1:5000" || ev.Remote.String() != "127.0.0.2:40000" {
		t.Errorf("decoded %+v", ev)
	}
	if ev.Sock == 0 || ev.Sock == r.Sk {
		t.Errorf("socket id %x: want an opaque non-zero id, not the kernel address", ev.Sock)
	}
}

// Queue records carry their message as payload, beside what queues record
// in place of addresses (ipc_extra).
func TestDecodeQueuePayload(t *testing.T) {
	for _, mech := range []ipcMechanism{ipcMechanismMECH_POSIX_MQ, ipcMechanismMECH_SYSV_MQ} {
		r := ipcOpRecord{
			Kind: uint8(ipcRecordKindRECORD_OP), Mechanism: uint8(mech), Op: uint8(ipcOpTypeOPER_RECEIVE),
			Flags: uint8(ipcOpFlagOPF_TRUNCATED), Syscall: 0xffff, Pid: 10, Tid: 10, Fd: -1, StartNs: 100, EndNs: 200,
			Ret: 64, PayloadLen: 5,
		}
		x := ipcIpcExtra{A: 7, Id: 3}
		copy(unsafe.Slice(&r.Saddr[0], 32), unsafe.Slice((*byte)(unsafe.Pointer(&x)), unsafe.Sizeof(x)))
		var ev flow.Event
		if _, err := newTestDecoder().decode(opRecordBytes(r, []byte("hello")), &ev); err != nil {
			t.Fatal(err)
		}
		if string(ev.Payload) != "hello" || !ev.PayloadCaptured || !ev.PayloadTruncated || ev.IPC.Type != 7 || ev.Path != "" {
			t.Errorf("%v: payload %q captured=%v truncated=%v type %d path %q, want \"hello\" truncated, type 7, no path",
				ev.Mechanism, ev.Payload, ev.PayloadCaptured, ev.PayloadTruncated, ev.IPC.Type, ev.Path)
		}
	}
}

// With capture on, only sends and receives that moved data have a
// payload, even an empty one; everything else has none to show.
func TestDecodePayloadOnlyWhereDataMoved(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mech    ipcMechanism
		op      ipcOpType
		flags   ipcOpFlag
		ret     int64
		payload string
		want    bool
	}{
		{"pipe write", ipcMechanismMECH_PIPE, ipcOpTypeOPER_SEND, 0, 5, "hello", true},
		{"unix receive, bytes not read", ipcMechanismMECH_UNIX_STREAM, ipcOpTypeOPER_RECEIVE, ipcOpFlagOPF_TRUNCATED, 5, "", true},
		{"mq_timedreceive", ipcMechanismMECH_POSIX_MQ, ipcOpTypeOPER_RECEIVE, 0, 5, "hello", true},
		{"msgsnd", ipcMechanismMECH_SYSV_MQ, ipcOpTypeOPER_SEND, 0, 5, "hello", true},
		{"end of file", ipcMechanismMECH_PIPE, ipcOpTypeOPER_RECEIVE, 0, 0, "", false},
		{"failed write", ipcMechanismMECH_PIPE, ipcOpTypeOPER_SEND, 0, -32, "", false},
		{"would block", ipcMechanismMECH_UNIX_DGRAM, ipcOpTypeOPER_RECEIVE, 0, -11, "", false},
		{"signal send", ipcMechanismMECH_SIGNAL, ipcOpTypeOPER_SEND, 0, 0, "", false},
		{"signal receive", ipcMechanismMECH_SIGNAL, ipcOpTypeOPER_RECEIVE, 0, 1, "", false},
		{"shmat", ipcMechanismMECH_SYSV_SHM, ipcOpTypeOPER_ATTACH, 0, 4096, "", false},
		{"munmap", ipcMechanismMECH_POSIX_SHM, ipcOpTypeOPER_DETACH, 0, 4096, "", false},
		{"futex wake", ipcMechanismMECH_POSIX_SHM, ipcOpTypeOPER_WAKE, 0, 1, "", false},
		{"mq_notify", ipcMechanismMECH_POSIX_MQ, ipcOpTypeOPER_WAIT, 0, 0, "", false},
		{"mq_open", ipcMechanismMECH_POSIX_MQ, ipcOpTypeOPER_CREATE, ipcOpFlagOPF_PATH, 3, "orders", false},
		{"msgget", ipcMechanismMECH_SYSV_MQ, ipcOpTypeOPER_OPEN, 0, 3, "", false},
	} {
		r := ipcOpRecord{
			Kind: uint8(ipcRecordKindRECORD_OP), Mechanism: uint8(tc.mech), Op: uint8(tc.op), Flags: uint8(tc.flags),
			Syscall: 0xffff, Pid: 10, Tid: 10, Fd: -1, StartNs: 100, EndNs: 200, Ret: tc.ret, PayloadLen: uint32(len(tc.payload)),
		}
		for _, on := range []bool{true, false} {
			d := newTestDecoder()
			d.payload = on
			var ev flow.Event
			if _, err := d.decode(opRecordBytes(r, []byte(tc.payload)), &ev); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if want := tc.want && on; ev.PayloadCaptured != want {
				t.Errorf("%s, capture on %v: payload captured %v, want %v", tc.name, on, ev.PayloadCaptured, want)
			}
		}
	}
}

func TestDecodeNameRecords(t *testing.T) {
	d := newTestDecoder()
	n := ipcNameRecord{Kind: uint8(ipcRecordKindRECORD_NAME), Mechanism: uint8(ipcMechanismMECH_UNIX_STREAM), Len: 14, Id: 42}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&n.Name[0])), len(n.Name)), "/run/app.sock\x00")
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&n)), nameRecordSize)
	if isOp, err := d.decode(bytes.Clone(raw), nil); err != nil || isOp {
		t.Fatalf("decode name: %v %v", isOp, err)
	}
	if got := d.names.unix(d.sockID(42)); got != "/run/app.sock" {
		t.Errorf("unix name %q", got)
	}
	f := ipcNameRecord{Kind: uint8(ipcRecordKindRECORD_NAME), Mechanism: uint8(ipcMechanismMECH_FIFO), Len: 2, Id: 7, Dev: 3}
	name := unsafe.Slice((*byte)(unsafe.Pointer(&f.Name[0])), len(f.Name))
	copy(name, "orders")
	copy(name[64:], "queues")
	if _, err := d.decode(bytes.Clone(unsafe.Slice((*byte)(unsafe.Pointer(&f)), nameRecordSize)), nil); err != nil {
		t.Fatal(err)
	}
	if got := d.names.fifo(3, 7); got != "/queues/orders" {
		t.Errorf("fifo name %q, want /queues/orders", got)
	}
}

func TestParseMountInfo(t *testing.T) {
	in := "22 1 0:21 / /proc rw - proc proc rw\n" +
		"29 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"30 29 0:25 / /dev/shm rw - tmpfs tmpfs rw\n" +
		"31 29 8:1 /home /mnt/bind\\040dir rw - ext4 /dev/sda1 rw\n" +
		"32 29 0:26 / /mnt/with\\040space rw - tmpfs tmpfs rw\n"
	got := parseMountInfo(strings.NewReader(in))
	want := map[uint32]string{21: "/proc", 8<<20 | 1: "/", 25: "/dev/shm", 26: "/mnt/with space"}
	for dev, p := range want {
		if got[dev] != p {
			t.Errorf("dev %d:%d -> %q, want %q", dev>>20, dev&0xfffff, got[dev], p)
		}
	}
}

// FuzzDecode feeds the decoder what a broken or hostile ring buffer could
// hold: it must never panic, and what it accepts must be consistent.
func FuzzDecode(f *testing.F) {
	f.Add(opRecordBytes(ipcOpRecord{Kind: 1, Mechanism: 1, Op: 1, PayloadLen: 2}, []byte("hi")))
	f.Add(opRecordBytes(ipcOpRecord{Kind: 1, Mechanism: 7, Op: 2, Family: 10, Flags: 0xff}, nil))
	f.Add([]byte{2, 3, 200, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev flow.Event
		isOp, err := newTestDecoder().decode(raw, &ev)
		if err != nil || !isOp {
			return
		}
		if ev.Op == flow.Delivery {
			if !ev.Remote.IsValid() || ev.Mechanism != flow.UDP {
				t.Fatalf("accepted a delivery without a sender: %+v", ev)
			}
			return
		}
		if len(ev.Payload) > len(raw)-opRecordSize {
			t.Fatalf("payload of %d bytes from a %d-byte record", len(ev.Payload), len(raw))
		}
		if ev.Mechanism == 0 || ev.Op == 0 || ev.End.Before(ev.Start) {
			t.Fatalf("accepted an inconsistent event %+v", ev)
		}
	})
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add("29 1 8:1 / / rw - ext4 /dev/sda1 rw\n31 29 8:1 /x /a\\040b rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseMountInfo(strings.NewReader(s))
	})
}
