package main

import (
	"slices"
	"testing"
)

func TestFailedTestsAreTheTopLevelFailures(t *testing.T) {
	log := "[arm64-6.1] === RUN   TestA\n" +
		"[arm64-6.1] --- FAIL: TestA (1.00s)\n" +
		"[arm64-6.1]     --- FAIL: TestA/sub (0.50s)\n" +
		"[arm64-6.1] --- PASS: TestB (0.10s)\n" +
		"[arm64-6.1] --- FAIL: TestC (2.00s)\n"
	if got := failedTests(log); !slices.Equal(got, []string{"TestA", "TestC"}) {
		t.Errorf("failedTests = %v, want [TestA TestC]", got)
	}
	if got := failedTests("[amd64-6.1] --- PASS: TestB (0.10s)\n"); got != nil {
		t.Errorf("failedTests of a passing log = %v", got)
	}
}
