package ipcload

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Workloads for message queues, shared memory and signals. Each takes its
// arguments as strings, like the others in this package.
func runIPC(mode string, a argList) (bool, error) {
	switch mode {
	case "mq-send":
		// mq-send NAME COUNT SIZE PRIOS: sends COUNT messages, the i-th
		// with priority PRIOS[i % len], creating the queue.
		return true, mqSend(a.str(0), a.int(1), a.int(2), ints(a.str(3)))
	case "mq-recv":
		// mq-recv NAME COUNT SIZE ASK: receives COUNT messages; ASK "prio"
		// asks the kernel for each one's priority, "noprio" does not.
		return true, mqRecv(a.str(0), a.int(1), a.int(2), a.str(3) == "prio")
	case "msg-send":
		// msg-send KEY COUNT SIZE MTYPES: SysV msgsnd, the i-th message
		// with mtype MTYPES[i % len].
		return true, msgSend(a.int(0), a.int(1), a.int(2), ints(a.str(3)))
	case "msg-recv":
		// msg-recv KEY COUNT SIZE MSGTYP [except]: SysV msgrcv with msgtyp,
		// and MSG_EXCEPT if asked.
		return true, msgRecv(a.int(0), a.int(1), a.int(2), a.int(3), a.opt(4) == "except")
	case "shm-sysv":
		// shm-sysv KEY SIZE ROLE ROUNDS: ROLE "waker" creates the segment,
		// attaches and, ROUNDS times, waits until word 1 says a waiter
		// waits, then stores into word 0 and wakes it; "waiter" attaches
		// and waits on word 0 ROUNDS times. Both detach; the waker removes
		// the segment.
		return true, shmSysV(a.int(0), a.int(1), a.str(2), a.int(3))
	case "shm-posix":
		// shm-posix NAME SIZE ROLE ROUNDS: the same over shm_open (a file
		// in /dev/shm) and mmap; the waker unlinks it.
		return true, shmPOSIX(a.str(0), a.int(1), a.str(2), a.int(3))
	case "memfd":
		// memfd SIZE ROUNDS: creates a memfd, maps it, and starts a copy
		// of itself with the descriptor (memfd-child) that maps it too;
		// the two synchronise as waker and waiter.
		return true, memfdParent(a.int(0), a.int(1))
	case "memfd-child":
		return true, memfdChild(a.int(0), a.int(1))
	case "signal-target":
		// signal-target SIGNO COUNT READY: handles SIGNO, writes its pid
		// to the file READY, and exits after COUNT deliveries.
		return true, signalTarget(a.int(0), a.int(1), a.str(2))
	case "signal-send":
		// signal-send PID SIGNO COUNT HOW: HOW is kill, tgkill, sigqueue or
		// pidfd; waits for each delivery before the next send, so that
		// none merge.
		return true, signalSend(a.int(0), a.int(1), a.int(2), a.str(3))
	case "sigpipe":
		// sigpipe: writes to a pipe whose reader is gone; the kernel
		// raises SIGPIPE.
		return true, sigpipe()
	}
	return false, nil
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			panic(fmt.Sprintf("not a number list: %q", s))
		}
		out = append(out, n)
	}
	return out
}

func cstr(s string) *byte {
	b, err := unix.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The syscalls take a queue's name without the leading slash (glibc's
// mq_open strips it).
func mqName(name string) *byte { return cstr(strings.TrimPrefix(name, "/")) }

func mqOpen(name string, flags int) (int, error) {
	attr := struct {
		flags, maxmsg, msgsize, curmsgs int64
		_                               [4]int64
	}{maxmsg: 10, msgsize: 1024}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(mqName(name))), uintptr(flags), 0o600,
		uintptr(unsafe.Pointer(&attr)), 0, 0)
	if e != 0 {
		return -1, fmt.Errorf("mq_open %s: %w", name, e)
	}
	return int(fd), nil
}

func mqSend(name string, count, size int, prios []int) error {
	fd, err := mqOpen(name, unix.O_WRONLY|unix.O_CREAT)
	if err != nil {
		return err
	}
	for i := 0; i < count; i++ {
		msg := Message(i, size)
		prio := prios[i%len(prios)]
		if _, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(unsafe.Pointer(&msg[0])), uintptr(size),
			uintptr(prio), 0, 0); e != 0 {
			return fmt.Errorf("mq_timedsend: %w", e)
		}
	}
	return unix.Close(fd)
}

func mqRecv(name string, count, size int, askPrio bool) error {
	fd, err := mqOpen(name, unix.O_RDONLY|unix.O_CREAT)
	if err != nil {
		return err
	}
	buf := make([]byte, 1024)
	var prio uint32
	for i := 0; i < count; i++ {
		p := uintptr(0)
		if askPrio {
			p = uintptr(unsafe.Pointer(&prio))
		}
		if _, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			p, 0, 0); e != 0 {
			return fmt.Errorf("mq_timedreceive: %w", e)
		}
	}
	unix.Close(fd)
	if _, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(mqName(name))), 0, 0); e != 0 && e != unix.ENOENT {
		return fmt.Errorf("mq_unlink: %w", e)
	}
	return nil
}

func msgGet(key int) (int, error) {
	id, _, e := unix.Syscall(unix.SYS_MSGGET, uintptr(key), unix.IPC_CREAT|0o600, 0)
	if e != 0 {
		return -1, fmt.Errorf("msgget: %w", e)
	}
	return int(id), nil
}

func msgSend(key, count, size int, mtypes []int) error {
	id, err := msgGet(key)
	if err != nil {
		return err
	}
	buf := make([]byte, 8+size)
	for i := 0; i < count; i++ {
		*(*int64)(unsafe.Pointer(&buf[0])) = int64(mtypes[i%len(mtypes)])
		copy(buf[8:], Message(i, size))
		if _, _, e := unix.Syscall6(unix.SYS_MSGSND, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(size), 0, 0, 0); e != 0 {
			return fmt.Errorf("msgsnd: %w", e)
		}
	}
	return nil
}

func msgRecv(key, count, size, msgtyp int, except bool) error {
	id, err := msgGet(key)
	if err != nil {
		return err
	}
	flags := 0
	if except {
		flags = 020000 // MSG_EXCEPT
	}
	buf := make([]byte, 8+size)
	for i := 0; i < count; i++ {
		if err := msgrcv(id, buf, size, msgtyp, flags); err != nil {
			return err
		}
	}
	return nil
}

// msgrcv receives a message of at most size bytes into buf (8 more for
// its type), again when a signal interrupts it: msgrcv(2) is never
// restarted, and Go's runtime signals its threads (SIGURG, to preempt
// them) as well as the workloads' own signals do.
func msgrcv(id int, buf []byte, size, msgtyp, flags int) error {
	for {
		_, _, e := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(size),
			uintptr(msgtyp), uintptr(flags), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("msgrcv: %w", e)
		}
		return nil
	}
}

// handshake runs ROUNDS of a futex wake-up over a shared region: word 0 is
// the futex, word 1 counts the rounds the waiter is ready for.
func handshake(mem []byte, role string, rounds int) error {
	word := (*uint32)(unsafe.Pointer(&mem[0]))
	ready := (*uint32)(unsafe.Pointer(&mem[4]))
	for r := 1; r <= rounds; r++ {
		if role == "waiter" {
			atomic.StoreUint32(ready, uint32(r))
			for atomic.LoadUint32(word) != uint32(r) {
				// FUTEX_WAIT, process-shared: sleeps while word is r-1.
				unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), 0, uintptr(r-1), 0, 0, 0)
			}
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for atomic.LoadUint32(ready) != uint32(r) {
			if time.Now().After(deadline) {
				return fmt.Errorf("the waiter never got ready for round %d", r)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(2 * time.Millisecond) // let it sleep in the kernel
		atomic.StoreUint32(word, uint32(r))
		unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), 1, 1, 0, 0, 0) // FUTEX_WAKE one
	}
	return nil
}

func shmSysV(key, size int, role string, rounds int) error {
	flags := 0o600
	if role == "waker" {
		flags |= unix.IPC_CREAT
	}
	var id int
	var err error
	for i := 0; ; i++ {
		if id, err = unix.SysvShmGet(key, size, flags); err == nil {
			break
		}
		if i == 1000 {
			return fmt.Errorf("shmget: %w", err)
		}
		time.Sleep(5 * time.Millisecond) // the waker has not created it yet
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return fmt.Errorf("shmat: %w", err)
	}
	if err := handshake(mem, role, rounds); err != nil {
		return err
	}
	if err := unix.SysvShmDetach(mem); err != nil {
		return fmt.Errorf("shmdt: %w", err)
	}
	if role == "waker" {
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
			return fmt.Errorf("shmctl: %w", err)
		}
	}
	return nil
}

func shmPOSIX(name string, size int, role string, rounds int) error {
	path := "/dev/shm/" + strings.TrimPrefix(name, "/")
	var fd int
	var err error
	if role == "waker" {
		if fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT, 0o600); err != nil {
			return err
		}
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			return err
		}
	} else {
		for i := 0; ; i++ {
			if fd, err = unix.Open(path, unix.O_RDWR, 0); err == nil {
				if st := (unix.Stat_t{}); unix.Fstat(fd, &st) == nil && st.Size >= int64(size) {
					break
				}
				unix.Close(fd)
			}
			if i == 1000 {
				return fmt.Errorf("open %s: %v", path, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	if err := handshake(mem, role, rounds); err != nil {
		return err
	}
	if err := unix.Munmap(mem); err != nil {
		return err
	}
	if role == "waker" {
		return unix.Unlink(path)
	}
	return nil
}

func memfdParent(size, rounds int) error {
	fd, err := unix.MemfdCreate("icptrack-test", 0)
	if err != nil {
		return err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return err
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	self, _ := os.Executable()
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, Env+"=") {
			env = append(env, e)
		}
	}
	child := &syscall.ProcAttr{
		Env:   append(env, Env+"=memfd-child"),
		Files: []uintptr{0, 1, 2, uintptr(fd)},
	}
	pid, err := syscall.ForkExec(self, []string{self, strconv.Itoa(size), strconv.Itoa(rounds)}, child)
	if err != nil {
		return err
	}
	if err := handshake(mem, "waker", rounds); err != nil {
		return err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if ws.ExitStatus() != 0 {
		return fmt.Errorf("memfd-child failed: %v", ws)
	}
	return unix.Munmap(mem)
}

func memfdChild(size, rounds int) error {
	mem, err := unix.Mmap(3, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	if err := handshake(mem, "waiter", rounds); err != nil {
		return err
	}
	return unix.Munmap(mem)
}

func signalTarget(signo, count int, ready string) error {
	sigs := make(chan os.Signal, count)
	signal.Notify(sigs, syscall.Signal(signo))
	if err := os.WriteFile(ready, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	for i := 0; i < count; i++ {
		select {
		case <-sigs:
			// Acknowledge each, so the sender never merges two.
			if err := os.WriteFile(ready+".ack", []byte(strconv.Itoa(i+1)), 0o600); err != nil {
				return err
			}
		case <-time.After(20 * time.Second):
			return fmt.Errorf("got %d of %d signals", i, count)
		}
	}
	return nil
}

func signalSend(pid, signo, count int, how string) error {
	ack := ""
	if d := os.Getenv("ICPTRACK_SIGNAL_ACK"); d != "" {
		ack = d
	}
	for i := 0; i < count; i++ {
		var err error
		switch how {
		case "kill":
			err = unix.Kill(pid, syscall.Signal(signo))
		case "tgkill":
			err = unix.Tgkill(pid, pid, syscall.Signal(signo))
		case "sigqueue":
			// As sigqueue(3) fills it: SI_QUEUE, from this pid and uid.
			info := unix.Siginfo{Signo: int32(signo), Code: -1}
			fields := (*[2]uint32)(unsafe.Pointer(uintptr(unsafe.Pointer(&info)) + 16))
			fields[0], fields[1] = uint32(os.Getpid()), uint32(os.Getuid())
			_, _, e := unix.Syscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(pid), uintptr(signo), uintptr(unsafe.Pointer(&info)))
			if e != 0 {
				err = e
			}
		case "pidfd":
			var fd int
			if fd, err = unix.PidfdOpen(pid, 0); err == nil {
				err = unix.PidfdSendSignal(fd, syscall.Signal(signo), nil, 0)
				unix.Close(fd)
			}
		default:
			return fmt.Errorf("unknown way to signal %q", how)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", how, err)
		}
		if ack == "" {
			continue
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			b, _ := os.ReadFile(ack)
			if string(b) == strconv.Itoa(i+1) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("signal %d never acknowledged", i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func sigpipe() error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	unix.Close(p[0])
	if _, err := unix.Write(p[1], []byte("x")); err != unix.EPIPE {
		return fmt.Errorf("write to a pipe with no reader: %v, want EPIPE", err)
	}
	return nil
}
