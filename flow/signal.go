package flow

import (
	"slices"
	"strconv"
	"time"
)

// Signals: the kernel names both ends. A send (signal_generate) knows its
// target; a receive (signal_deliver) knows its sender from the siginfo. A
// receive links the sends it answers: for a standard signal, every send
// since the last delivery, because while one is pending the others merge
// into it; for a real-time signal, which queues, the oldest one.

const sigRTMin = 34

var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
	20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// SignalName names a Linux signal number: SIGTERM, SIGRTMIN+3.
func SignalName(n int) string {
	if n > 0 && n < len(signalNames) && signalNames[n] != "" {
		return signalNames[n]
	}
	if n >= sigRTMin && n <= 64 {
		if n == sigRTMin {
			return "SIGRTMIN"
		}
		return "SIGRTMIN+" + strconv.Itoa(n-sigRTMin)
	}
	return "SIG" + strconv.Itoa(n)
}

// Kernel is the peer of a signal the kernel raised.
var Kernel = Peer{PID: 0, Comm: "kernel"}

type signalKey struct {
	from, to uint32 // tgids; from 0 is the kernel
	signo    int
}

type sentSignal struct {
	id OpID
	at time.Time
}

func signalChannel(k signalKey) string {
	return "signal:" + strconv.FormatUint(uint64(k.from), 10) + ":" + strconv.FormatUint(uint64(k.to), 10) + ":" +
		strconv.Itoa(k.signo)
}

func (c *Correlator) addSignal(ev *Event, op *Operation, now time.Time) {
	op.Signal = SignalName(ev.IPC.Signal)
	op.Endpoint = op.Signal
	if ev.Op == Send {
		k := signalKey{from: ev.PID, to: ev.IPC.Target, signo: ev.IPC.Signal}
		op.Channel = signalChannel(k)
		op.Peer = Peer{PID: ev.IPC.Target, Comm: c.commOf(ev.IPC.Target)}
		if ev.PID == 0 {
			op.Comm = Kernel.Comm
		}
		c.output(op, true)
		c.signals[k] = append(c.signals[k], sentSignal{id: op.ID, at: now})
		c.releaseSignals(k)
		return
	}
	k := signalKey{from: ev.IPC.Sender, to: ev.PID, signo: ev.IPC.Signal}
	// A signal the kernel raised on a process's behalf (SIGPIPE for its
	// own write) is delivered as if the process had sent it to itself; the
	// kernel's send tells them apart.
	if k.from == k.to && len(c.signals[k]) == 0 && len(c.signals[signalKey{0, k.to, k.signo}]) > 0 {
		k.from = 0
	}
	op.Channel = signalChannel(k)
	if k.from == 0 {
		op.Peer = Kernel
	} else {
		op.Peer = Peer{PID: k.from, Comm: c.commOf(k.from)}
	}
	if c.takeSignals(op, k) {
		c.output(op, true)
		return
	}
	h := &heldReceive{signal: k}
	h.qo = c.output(op, false)
	c.signalHeld[k] = append(c.signalHeld[k], h)
	c.hold(h, now)
}

// takeSignals links a receive to the sends it answers.
func (c *Correlator) takeSignals(op *Operation, k signalKey) bool {
	sent := c.signals[k]
	if len(sent) == 0 {
		return false
	}
	n := len(sent)
	if k.signo >= sigRTMin {
		n = 1
	}
	for _, s := range sent[:n] {
		op.Links = append(op.Links, s.id)
	}
	if n == len(sent) {
		delete(c.signals, k)
	} else {
		c.signals[k] = sent[n:]
	}
	c.stats.Linked++
	return true
}

func (c *Correlator) releaseSignals(k signalKey) {
	held := c.signalHeld[k]
	for len(held) > 0 && c.takeSignals(held[0].qo.op, k) {
		held[0].done = true
		c.ready(held[0].qo)
		held = held[1:]
	}
	if len(held) == 0 {
		delete(c.signalHeld, k)
	} else {
		c.signalHeld[k] = held
	}
}

// commOf is the last name seen for a process, for peers known by pid only.
func (c *Correlator) commOf(pid uint32) string {
	return c.comms[pid]
}

func unholdFrom[K comparable](m map[K][]*heldReceive, k K, h *heldReceive) {
	held := m[k]
	if i := slices.Index(held, h); i >= 0 {
		held = slices.Delete(held, i, i+1)
	}
	if len(held) == 0 {
		delete(m, k)
	} else {
		m[k] = held
	}
}
