package selector

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if err := (Spec{PIDs: []int{1}, Comms: []string{"nginx"}, Cgroup: "/system.slice"}).Check(nil); err != nil {
		t.Error(err)
	}
	name := func(f string) string { return "include." + f }
	for spec, want := range map[*Spec]string{
		{PIDs: []int{0}}: "include.pids 0 is not a process id",
		{Comms: []string{"a-name-much-too-long"}}: `include.comms "a-name-much-too-long" is longer than the 15 characters`,
		{Comms: []string{""}}:                     "empty name",
		{Cgroup: "/a", Container: "abcd"}:         "include.cgroup and include.container both name a cgroup",
		{Container: "abc"}:                        "at least 4 characters",
		{PIDs: make([]int, MaxPIDs+1)}:            "more than the 4096 icptrack can select",
		{Comms: make([]string, MaxComms+1)}:       "more than the 256 icptrack can select",
	} {
		err := spec.Check(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", *spec, err, want)
		}
	}
	if !(Spec{}).Empty() || (Spec{Comms: []string{"x"}}).Empty() {
		t.Error("Empty is wrong")
	}
}
