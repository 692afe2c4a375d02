// Command demo is a small client/server/worker system for icptrack to
// trace: the client sends requests to the server over a unix socket, the
// server hands each to a worker over a pipe and relays the worker's answer
// back. None of them knows it is being traced.
//
// One binary plays all three parts, chosen by the name it runs under
// (demo-client, demo-server, demo-worker): the kernel names a process after
// the file it executes, so each part shows up under its own name.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	role := strings.TrimPrefix(filepath.Base(os.Args[0]), "demo-")
	var err error
	switch role {
	case "client", "demo":
		err = client()
	case "server":
		err = server(os.Args[1])
	case "worker":
		err = worker()
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
		fmt.Fprintf(conn, "order-%d\n", i)
		answer, err := replies.ReadString('\n')
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		fmt.Printf("order-%d -> %s", i, answer)
	}
	return nil
}

// server answers each request with the help of one worker it starts, to
// which it talks through a pair of pipes.
func server(sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()

	toWorker, workerIn, err := os.Pipe()
	if err != nil {
		return err
	}
	workerOut, fromWorker, err := os.Pipe()
	if err != nil {
		return err
	}
	w := exec.Command(part("worker"))
	w.Stdin, w.Stdout, w.Stderr = toWorker, fromWorker, os.Stderr
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the worker: %w", err)
	}
	toWorker.Close()
	fromWorker.Close()
	answers := bufio.NewReader(workerOut)

	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	requests := bufio.NewReader(conn)
	for {
		req, err := requests.ReadString('\n')
		if err != nil {
			break // the client hung up
		}
		if _, err := workerIn.WriteString(req); err != nil {
			return fmt.Errorf("hand %q to the worker: %w", strings.TrimSpace(req), err)
		}
		answer, err := answers.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read the worker's answer: %w", err)
		}
		if _, err := conn.Write([]byte(answer)); err != nil {
			return err
		}
	}
	workerIn.Close()
	return w.Wait()
}

// worker reads requests on stdin and writes a short digest of each.
func worker() error {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		sum := sha256.Sum256(in.Bytes())
		fmt.Println(hex.EncodeToString(sum[:6]))
	}
	return in.Err()
}
