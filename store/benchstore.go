package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// BenchOps makes n operations shaped like a busy host's: processes that
// live for a while and go (a pid is alive for about 1% of the run, 50 at a
// time), each talking over a few of its channels, with the names,
// syscalls and sizes of the demo's pipes, unix sockets and queues.
// Operations are 10µs apart. The benchmarks of the store and of the API
// use them.
func BenchOps(seed uint64, n int, base time.Time) func(i int, op *flow.Operation) {
	const alive = 50
	comms := []string{"nginx", "php-fpm", "postgres", "redis-server", "demo-server", "demo-worker", "sshd", "systemd-journal"}
	mechs := []flow.Mechanism{flow.UnixStream, flow.Pipe, flow.POSIXMQ, flow.TCP, flow.UnixDgram}
	syscalls := []string{"write", "read", "sendmsg", "recvmsg", "mq_timedsend", "mq_timedreceive"}
	generation := max(n/100, 1)
	return func(i int, op *flow.Operation) {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		// The processes alive at i: 50 of them, replaced as i moves on.
		slot := r.IntN(alive)
		gen := (i + slot*generation/alive) / generation
		pid := uint32(10000 + gen*alive + slot)
		m := mechs[int(pid)%len(mechs)]
		ch := fmt.Sprintf("%s:%d", m, 100000+int(pid)*4+r.IntN(4))
		*op = flow.Operation{
			ID:         flow.OpID(r.Uint64() | 1),
			Time:       base.Add(time.Duration(i) * 10 * time.Microsecond),
			Duration:   time.Duration(500 + r.IntN(20000)),
			PID:        pid,
			TID:        pid,
			PPID:       1,
			Comm:       comms[int(pid)%len(comms)],
			Exe:        "/usr/sbin/" + comms[int(pid)%len(comms)],
			Mechanism:  m,
			Op:         flow.OpType(1 + r.IntN(2)),
			Syscall:    syscalls[r.IntN(len(syscalls))],
			Channel:    ch,
			Endpoint:   "socket:[" + ch[len(ch)-6:] + "]",
			Bytes:      int64(r.IntN(4096)),
			QueueDepth: -1,
			Peer:       flow.Peer{PID: pid ^ 1, Comm: comms[int(pid^1)%len(comms)]},
			CgroupID:   uint64(4000 + pid%7),
		}
		if op.Op == flow.Receive {
			op.Links = []flow.OpID{flow.OpID(r.Uint64() | 1)}
		}
	}
}

// BenchStore is a store of N operations of BenchOps from Base, encrypted
// and sealed, that the benchmarks of the store and of the API share.
type BenchStore struct {
	Dir       string
	Keyring   *Keyring
	VerifyKey *VerifyKey
	Base      time.Time
	N         int
}

// OpenBenchStore opens the benchmarks' store of n operations, making it
// first if it is not there: it is kept under the temporary directory (by
// format version and size) for the next run, since the ten-million one
// takes a while. logf says when it is being made.
func OpenBenchStore(n int, logf func(format string, args ...any)) (*BenchStore, error) {
	root := filepath.Join(os.TempDir(), fmt.Sprintf("icptrack-store-bench-v%d-%d", formatVersion, n))
	dir, keys, vkFile, done := filepath.Join(root, "store"), filepath.Join(root, "keyring"), filepath.Join(root, "verify-key"), filepath.Join(root, "complete")
	base := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	if _, err := os.Stat(done); err != nil {
		logf("making a store of %d operations in %s (kept for the next run)", n, root)
		if err := writeBenchStore(root, dir, keys, vkFile, base, n); err != nil {
			return nil, fmt.Errorf("making the benchmarks' store: %w", err)
		}
		if err := os.WriteFile(done, nil, 0o600); err != nil {
			return nil, err
		}
	}
	kr, err := LoadKeyring(keys)
	if err != nil {
		return nil, err
	}
	vkText, err := os.ReadFile(vkFile)
	if err != nil {
		return nil, err
	}
	vk, err := ParseVerifyKey(string(vkText))
	if err != nil {
		return nil, err
	}
	return &BenchStore{Dir: dir, Keyring: kr, VerifyKey: vk, Base: base, N: n}, nil
}

func writeBenchStore(root, dir, keys, vkFile string, base time.Time, n int) error {
	os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	if _, err := NewKeyring(keys, nil); err != nil {
		return err
	}
	vk, err := CreateSeal(dir, DefaultSealEvery, base)
	if err != nil {
		return err
	}
	if err := os.WriteFile(vkFile, []byte(vk.String()), 0o600); err != nil {
		return err
	}
	// The writer's clock runs with the operations', so that the store is
	// sealed as it would have been.
	clock := base
	w, err := Open(dir, Options{KeyFile: keys, Clock: func() time.Time { return clock }})
	if err != nil {
		return err
	}
	gen := BenchOps(4, n, base)
	var op flow.Operation
	for i := range n {
		gen(i, &op)
		clock = op.Time
		if err := w.Append(&op); err != nil {
			w.Close()
			return err
		}
		if i%1000 == 0 {
			if err := w.Tick(clock); err != nil {
				w.Close()
				return err
			}
		}
	}
	return w.Close()
}
