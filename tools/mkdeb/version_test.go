package main

import (
	"os/exec"
	"testing"
)

func TestDebVersionFollowsGitDescribe(t *testing.T) {
	for _, c := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-g9c327e1", "1.2.3+4.g9c327e1"},
		{"v1.2.3-4-g9c327e1-dirty", "1.2.3+4.g9c327e1.dirty"},
		{"v1.3.0-rc1", "1.3.0~rc1"},
		{"v1.3.0-rc1-2-gabcdef0", "1.3.0~rc1+2.gabcdef0"},
		{"9c327e1", "0.0.0+9c327e1"},
		{"9c327e1-dirty", "0.0.0+9c327e1.dirty"},
	} {
		got, err := debVersion(c.describe)
		if err != nil || got != c.want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", c.describe, got, err, c.want)
		}
	}
	for _, bad := range []string{"release-1", "v1.2.3 4", ""} {
		if v, err := debVersion(bad); err == nil {
			t.Errorf("debVersion(%q) = %q, want an error", bad, v)
		}
	}
}

// dpkg agrees that the versions sort as the commits were made.
func TestDebVersionsSortAsReleases(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg")
	}
	order := []string{"0.0.0+9c327e1", "1.2.3", "1.2.3+4.g9c327e1", "1.2.3+4.g9c327e1.dirty", "1.3.0~rc1", "1.3.0~rc1+2.gabcdef0", "1.3.0"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s", order[i-1], order[i])
		}
	}
	// A changed tree comes after its commit (not before the next one:
	// git cannot say where it stands).
	if err := exec.Command("dpkg", "--compare-versions", "1.2.3", "lt", "1.2.3+dirty").Run(); err != nil {
		t.Error("dpkg: 1.2.3 is not before 1.2.3+dirty")
	}
}
