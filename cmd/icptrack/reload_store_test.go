package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SIGHUP while a workload writes into a pipe at a steady pace and trace
// keeps a store: the store moves to another directory (sealed), a key
// that does not exist is refused, the same directory takes a key and a
// new retention (retuned, never two writers), and the store moves back
// to the first directory. Both stores then verify, and every write of
// the workload is in exactly one of them; the API answers from the store
// in place.
func TestReloadMovesAndRetunesTheStoreLosingNoOperation(t *testing.T) {
	needsBPF(t)
	dir := t.TempDir()
	writer := selfAs(t, dir, "store-writer")
	storeA, storeB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	keys := filepath.Join(dir, "keyring")
	r := run(t, "keys", "new", "--keyring", keys, "--store", storeB, "--seal-every", "1s")
	vk := verifyKeyLine.FindString(r.stdout)
	if r.code != 0 || vk == "" {
		t.Fatalf("keys new: %d %s %s", r.code, r.stdout, r.stderr)
	}
	addr := freeAddr(t)
	head := "trace:\n  comms: [store-writer]\napi:\n  address: " + addr + "\n"
	a := startReloadable(t, head+"store:\n  dir: "+storeA+"\n")
	waitReady(t, "http://"+addr)
	storeDir := func() string {
		t.Helper()
		var st struct {
			Store struct {
				Dir string `json:"dir"`
			} `json:"store"`
		}
		getJSON(t, "http://"+addr+"/api/v1/status", &st)
		return st.Store.Dir
	}

	const count, size = 4000, 64
	pipe := pacedPipe(t, writer, count, size)
	time.Sleep(700 * time.Millisecond)
	a.reload(head+"store:\n  dir: "+storeB+"\n", 1)
	if got := storeDir(); got != storeB {
		t.Errorf("the API's store after the move: %q, want %s", got, storeB)
	}
	time.Sleep(500 * time.Millisecond)
	a.refuse(head+"store:\n  dir: "+storeB+"\n  key_file: "+keys+".missing\n", 1)
	time.Sleep(300 * time.Millisecond)
	a.reload(head+"store:\n  dir: "+storeB+"\n  key_file: "+keys+"\n  segment_size: 1MiB\n  max_age: 30d\n", 2)
	time.Sleep(700 * time.Millisecond)
	a.reload(head+"store:\n  dir: "+storeA+"\n", 3)
	if got := storeDir(); got != storeA {
		t.Errorf("the API's store after the move back: %q, want %s", got, storeA)
	}
	if err := pipe.Wait(); err != nil {
		t.Fatalf("the workload: %v", err)
	}
	// The API reads the store that is in place, with what it holds.
	resp, err := http.Get("http://" + addr + "/api/v1/operations?limit=1&filter=" + "comm%20%3D%3D%20%22store-writer%22")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Window struct {
			Source string `json:"source"`
		} `json:"window"`
	}
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if page.Window.Source != "store" {
		t.Errorf("the API answers from %q, want the store", page.Window.Source)
	}
	a.stop()
	log := a.stderr.String()
	if !strings.Contains(log, "keys new --keyring") && !strings.Contains(log, "does not exist") {
		t.Errorf("the refused key is not explained:\n%s", log)
	}

	if r := run(t, "verify", storeA); r.code != 0 {
		t.Errorf("verify %s: exit %d\n%s%s", storeA, r.code, r.stdout, r.stderr)
	}
	r = run(t, "verify", storeB, "--keyring", keys, "--verify-key", vk)
	if r.code != 0 {
		t.Errorf("verify %s: exit %d\n%s%s", storeB, r.code, r.stdout, r.stderr)
	} else if last := strings.TrimSpace(r.stdout); !strings.Contains(last, "all PASS") || !strings.Contains(last, "the seals") {
		t.Errorf("verify %s did not check its seals:\n%s", storeB, last)
	}

	// The retune's key encrypts B from then on: without it B is unread.
	if r := run(t, "query", storeB); r.code != exitUsage || !strings.Contains(r.stderr, "encrypted") {
		t.Errorf("query %s without its keyring: exit %d %s, want a key error", storeB, r.code, r.stderr)
	}

	// Every write in exactly one store, each store some of them.
	seen := map[string]bool{}
	var sends, bytes int64
	for _, s := range []struct{ dir, key string }{{storeA, ""}, {storeB, keys}} {
		args := []string{"query", s.dir, "--filter", `comm == "store-writer" and mechanism == pipe and op == send`}
		if s.key != "" {
			args = append(args, "--keyring", s.key)
		}
		r := run(t, args...)
		if r.code != 0 {
			t.Fatalf("query %s: exit %d: %s", s.dir, r.code, r.stderr)
		}
		var mine int64
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if line == "" {
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("query %s: %v: %s", s.dir, err, line)
			}
			id, _ := ev["id"].(string)
			if seen[id] {
				t.Fatalf("operation %s is in two stores, or twice in one", id)
			}
			seen[id] = true
			n := int64(1)
			if c, ok := ev["count"].(float64); ok {
				n = int64(c)
			}
			sends += n
			mine += n
			bytes += int64(ev["bytes"].(float64))
		}
		if mine == 0 {
			t.Errorf("%s has none of the writes", s.dir)
		}
	}
	if sends != count || bytes != count*size {
		t.Errorf("the two stores hold %d writes and %d bytes, want %d and %d: the reloads lost or repeated operations\n%s",
			sends, bytes, count, count*size, log)
	}
}
