package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flotilla/flotilla/internal/fsutil"
)

// Lazy sync. The state file is a cache of the Raft log: every applied
// batch is also in the log, which is fsynced on a quorum before anything is
// acknowledged, and applying is idempotent (entries at or below the stored
// last applied index are skipped). So the file's commits need not be
// fsynced one by one, which takes two fsyncs off every acknowledgement.
//
// What that risks depends on what crashed:
//   - the process alone (SIGKILL, OOM, panic): the kernel still holds and
//     writes out every page the process wrote, and bbolt's copy-on-write
//     commits leave the file at its last commit. Nothing is lost.
//   - the machine (power loss, kernel crash): unsynced pages may be lost or
//     written partly, so the file may be behind or torn.
//
// To tell them apart, a marker file next to the store holds the boot id of
// the machine while the store is open; a clean Close syncs and removes it.
// Opening finds a marker from another boot only after a machine crash with
// the store open: the file is then not trusted (ErrUntrusted) and the
// caller rebuilds it from the Raft snapshot and log.

// ErrUntrusted means the state file was open when the machine last
// crashed; it may have lost commits and must be rebuilt.
var ErrUntrusted = errors.New("state file was open during a machine crash")

// Options configure OpenWith.
type Options struct {
	// LazySync skips the fsync of each commit (see above).
	LazySync bool
	// BootID overrides the machine's boot id (tests simulate a reboot).
	BootID string
}

const bootIDFile = "/proc/sys/kernel/random/boot_id"

func (o Options) bootID() string {
	if o.BootID != "" {
		return o.BootID
	}
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		// Without a boot id every unclean open looks like a machine
		// crash: always safe, only slower to recover.
		return "unknown-" + time.Now().Format(time.RFC3339Nano)
	}
	return strings.TrimSpace(string(b))
}

func markerPath(path string) string { return path + ".open" }

// checkTrusted reports ErrUntrusted when the store's marker was written
// during another boot.
func checkTrusted(path, bootID string) error {
	b, err := os.ReadFile(markerPath(path))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // closed cleanly, or never opened with lazy sync
	case err != nil:
		return fmt.Errorf("read state marker: %w", err)
	case !bytes.Equal(bytes.TrimSpace(b), []byte(bootID)):
		return fmt.Errorf("%s: %w (marker from boot %q, now %q)", path, ErrUntrusted, bytes.TrimSpace(b), bootID)
	}
	return nil
}

// writeOpenMarker records, durably, that the store is open in this boot.
func writeOpenMarker(path, bootID string) error {
	tmp := markerPath(path) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write state marker: %w", err)
	}
	_, err = f.WriteString(bootID + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, markerPath(path))
	}
	if err != nil {
		return fmt.Errorf("write state marker: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(path))
}

func removeOpenMarker(path string) error {
	if err := os.Remove(markerPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state marker: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(path))
}

// Discard moves an untrusted state file (and its marker) aside, so that a
// fresh one can be rebuilt; the old one is kept for inspection.
func Discard(path string) (string, error) {
	aside := fmt.Sprintf("%s.untrusted-%d", path, time.Now().UnixNano())
	if err := os.Rename(path, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("discard state file: %w", err)
	}
	if err := os.Remove(markerPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("discard state marker: %w", err)
	}
	return aside, fsutil.SyncDir(filepath.Dir(path))
}

// Crash closes the file the way a crashed process leaves it: no final
// sync, and with lazy sync the marker stays. In-process test clusters use
// it to kill a node.
func (s *Store) Crash() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return translate(err)
}
