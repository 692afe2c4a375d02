package flow

import (
	"strings"
	"testing"
)

func TestParseMechanisms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MechanismSet
	}{
		{"pipe", SetOf(Pipe)},
		{"pipe, fifo", SetOf(Pipe, FIFO)},
		{"unix", SetOf(UnixStream, UnixDgram, UnixSeqpacket)},
		{"TCP,udp", SetOf(TCP, UDP)},
		{"all", AllMechanisms()},
	} {
		got, err := ParseMechanisms(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMechanisms(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestUnknownMechanismListsTheValidOnes(t *testing.T) {
	_, err := ParseMechanisms("pipe,carrier-pigeon")
	if err == nil {
		t.Fatal("accepted an unknown mechanism")
	}
	for _, name := range []string{`"carrier-pigeon"`, "pipe", "unix_stream", "udp", "all"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %s", err, name)
		}
	}
	if _, err := ParseMechanisms(" , "); err == nil {
		t.Error("accepted an empty list")
	}
}
