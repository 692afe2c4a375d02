package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Status is the capture's state, as the caller of New knows it.
type Status struct {
	Kernel     string      `json:"kernel,omitempty"`
	Mechanisms []Mechanism `json:"mechanisms,omitempty"`
	// Drops are the operations lost so far, by reason.
	Drops map[string]uint64 `json:"drops,omitempty"`
}

// Mechanism is one IPC mechanism's probes: on, or off and why.
type Mechanism struct {
	Name   string `json:"name"`
	On     bool   `json:"on"`
	Reason string `json:"reason,omitempty"`
}

// StoreUsage is what the store takes on disk.
type StoreUsage struct {
	Dir      string `json:"dir"`
	Bytes    int64  `json:"bytes"`
	Segments int    `json:"segments"`
}

// windowStatus says how far back the server can answer from memory.
type windowStatus struct {
	Source     string     `json:"source"`
	Operations int        `json:"operations"`
	Capacity   int        `json:"capacity"`
	From       *time.Time `json:"from,omitempty"`
	To         *time.Time `json:"to,omitempty"`
}

type statusBody struct {
	Version  string       `json:"version"`
	UptimeNS int64        `json:"uptime_ns"`
	Window   windowStatus `json:"window"`
	// The rest is for admin only.
	Kernel     string            `json:"kernel,omitempty"`
	Mechanisms []Mechanism       `json:"mechanisms,omitempty"`
	Drops      map[string]uint64 `json:"drops,omitempty"`
	Store      *StoreUsage       `json:"store,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	n, from, to := s.live.span()
	b := statusBody{
		Version:  s.o.Version,
		UptimeNS: int64(s.o.Now().Sub(s.started)),
		Window:   windowStatus{Source: "memory", Operations: n, Capacity: s.live.capacity},
	}
	src := s.store.Load()
	if src.reader != nil {
		b.Window.Source = "store"
	}
	if n > 0 {
		b.Window.From, b.Window.To = &from, &to
	}
	if s.has(r, ScopeAdmin) {
		if s.o.Status != nil {
			st := s.o.Status()
			b.Kernel, b.Mechanisms, b.Drops = st.Kernel, st.Mechanisms, st.Drops
		}
		if b.Drops == nil {
			b.Drops = map[string]uint64{}
		}
		if src.dir != "" {
			b.Store = storeUsage(src.dir)
		}
	}
	writeJSON(w, http.StatusOK, b)
}

// storeUsage sums the store's segment files.
func storeUsage(dir string) *StoreUsage {
	u := &StoreUsage{Dir: dir}
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			u.Bytes += info.Size()
		}
		if strings.HasSuffix(d.Name(), ".seg") {
			u.Segments++
		}
		return nil
	})
	return u
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.o.Ready != nil && !s.o.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
