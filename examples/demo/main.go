// Command demo is a small client/server/worker system for icptrack to
// trace. For each request:
//
//	client ──unix socket──▶ server ──pipe──▶ worker
//	client ◀──unix socket── server ◀──POSIX queue── worker
//
// None of them knows it is being traced. Under icptrack each request is
// one trace across the three processes.
//
// One program plays all three parts, chosen by the name it runs under
// (demo-client, demo-server, demo-worker). Install it under the three
// names as hard links or copies, not symlinks: the kernel names a
// process's executable after the file a symlink points to.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	// Each part does its IPC on one thread, as a single-threaded C
	// program would. (Go otherwise moves goroutines between threads,
	// which hides which receive a send answers.)
	runtime.LockOSThread()
	role := strings.TrimPrefix(filepath.Base(os.Args[0]), "demo-")
	var err error
	switch role {
	case "client", "demo":
		err = client()
	case "server":
		err = server(os.Args[1])
	case "worker":
		err = worker(os.Args[1])
	default:
		err = fmt.Errorf("run me as demo-client, demo-server or demo-worker, not %s", os.Args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		os.Exit(1)
	}
}

// part is the path of this program under another part's name.
func part(name string) string {
	return filepath.Join(filepath.Dir(os.Args[0]), "demo-"+name)
}

// client starts the server, sends it requests, and prints the answers.
func client() error {
	requests := flag.Int("requests", 5, "requests to send")
	interval := flag.Duration("interval", 0, "pause between requests")
	flag.Parse()
	dir, err := os.MkdirTemp("", "icptrack-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "server.sock")

	srv := exec.Command(part("server"), sock)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start the server: %w", err)
	}
	defer srv.Wait()

	var conn net.Conn
	for i := 0; ; i++ {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		if i == 100 {
			return fmt.Errorf("the server never listened: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	replies := bufio.NewReader(conn)
	for i := 1; i <= *requests; i++ {
		if i > 1 {
			time.Sleep(*interval)
		}
		fmt.Fprintf(conn, "order-%d\n", i)
		answer, err := replies.ReadString('\n')
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		fmt.Printf("order-%d -> %s", i, answer)
	}
	return nil
}

// server answers each request with the help of a worker it starts: it
// hands the request over a pipe and takes the answer from a POSIX queue.
func server(sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()

	queue := fmt.Sprintf("/icptrack-demo-%d", os.Getpid())
	answers, err := mqOpen(queue, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL)
	if err != nil {
		return err
	}
	defer mqUnlink(queue)
	defer unix.Close(answers)

	toWorker, workerIn, err := os.Pipe()
	if err != nil {
		return err
	}
	w := exec.Command(part("worker"), queue)
	w.Stdin, w.Stdout, w.Stderr = toWorker, os.Stderr, os.Stderr
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the worker: %w", err)
	}
	toWorker.Close()

	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	requests := bufio.NewReader(conn)
	buf := make([]byte, mqMessageSize)
	for {
		req, err := requests.ReadString('\n')
		if err != nil {
			break // the client hung up
		}
		if _, err := workerIn.WriteString(req); err != nil {
			return fmt.Errorf("hand %q to the worker: %w", strings.TrimSpace(req), err)
		}
		n, err := mqReceive(answers, buf)
		if err != nil {
			return fmt.Errorf("take the worker's answer: %w", err)
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			return err
		}
	}
	workerIn.Close()
	return w.Wait()
}

// worker reads requests on stdin and queues a short digest of each.
func worker(queue string) error {
	out, err := mqOpen(queue, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(out)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		sum := sha256.Sum256(in.Bytes())
		if err := mqSend(out, []byte(hex.EncodeToString(sum[:6])+"\n")); err != nil {
			return err
		}
	}
	return in.Err()
}

// POSIX message queues, which Go's standard library does not wrap.

const mqMessageSize = 128

func mqOpen(name string, flags int) (int, error) {
	attr := struct {
		flags, maxmsg, msgsize, curmsgs int64
		_                               [4]int64
	}{maxmsg: 10, msgsize: mqMessageSize}
	p, err := unix.BytePtrFromString(strings.TrimPrefix(name, "/"))
	if err != nil {
		return -1, err
	}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags|unix.O_CLOEXEC), 0o600,
		uintptr(unsafe.Pointer(&attr)), 0, 0)
	if e != 0 {
		return -1, fmt.Errorf("mq_open %s: %w", name, e)
	}
	return int(fd), nil
}

func mqSend(fd int, msg []byte) error {
	for {
		_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("mq_timedsend: %w", e)
		}
		return nil
	}
}

func mqReceive(fd int, buf []byte) (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, fmt.Errorf("mq_timedreceive: %w", e)
		}
		return int(n), nil
	}
}

func mqUnlink(name string) {
	p, _ := unix.BytePtrFromString(strings.TrimPrefix(name, "/"))
	if _, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 && !errors.Is(e, unix.ENOENT) {
		fmt.Fprintf(os.Stderr, "server: mq_unlink %s: %v\n", name, e)
	}
}
