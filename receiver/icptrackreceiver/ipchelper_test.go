//go:build linux

package icptrackreceiver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// The tests that need real IPC drive a helper: this test binary, started
// again under the name icpgen, which the receiver selects by its name.
// The helper sends each line it reads on its standard input to itself as
// a unix datagram, reads it back, and answers on its standard output.
// Those are pipes, and the tests trace only unix_dgram: what the receiver
// sees of the helper is exactly the datagrams it was asked to send and
// their receives.

// helperComm is the helper's process name, for include::comms.
const helperComm = "icpgen"

const helperEnv = "ICPTRACK_TEST_IPC_HELPER"

func init() {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runIPCHelper())
	}
}

func runIPCHelper() int {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socketpair:", err)
		return 1
	}
	in := bufio.NewScanner(os.Stdin)
	buf := make([]byte, 4096)
	for in.Scan() {
		msg := in.Bytes()
		if _, err := syscall.Write(fds[0], msg); err != nil {
			fmt.Printf("send %q: %v\n", msg, err)
			continue
		}
		n, err := syscall.Read(fds[1], buf)
		switch {
		case err != nil:
			fmt.Printf("receive %q: %v\n", msg, err)
		case !bytes.Equal(buf[:n], msg):
			fmt.Printf("received %q, sent %q\n", buf[:n], msg)
		default:
			fmt.Println("ok")
		}
	}
	return 0
}

// helperBinary links this test binary into a directory of t's as icpgen.
func helperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), helperComm)
	if err := os.Link(self, bin); err != nil {
		// Another file system: copy it.
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// ipcHelper is a running helper. exchange may be called from several
// goroutines.
type ipcHelper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	mu  sync.Mutex
}

func startIPCHelper(bin string) (*ipcHelper, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &ipcHelper{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// exchange has the helper send msg (no newline in it) to itself and
// receive it, and returns once it has.
func (h *ipcHelper) exchange(msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := io.WriteString(h.in, msg+"\n"); err != nil {
		return err
	}
	answer, err := h.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the helper did not answer: %w", err)
	}
	if answer != "ok\n" {
		return errors.New(answer)
	}
	return nil
}

func (h *ipcHelper) stop() error {
	h.in.Close()
	return h.cmd.Wait()
}
