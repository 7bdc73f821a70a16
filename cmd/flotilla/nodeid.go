package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// serverIDFile is the name, inside the data dir, of the file holding this
// node's stable server id.
const serverIDFile = "server_id"

// serverIDLen is the length of a generated id: 22 base62 characters carry
// about 131 bits, as much as a random UUID.
const serverIDLen = 22

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// loadServerID returns the server id persisted in dataDir, generating and
// persisting a new random one on first start. dataDir is created (0o755)
// if missing. created reports whether the id is new.
//
// The id is what INFO server_id carries and, later, the Raft server id: it
// must survive restarts, so it is written with temp file + fsync + rename +
// directory fsync and never rewritten once it exists.
func loadServerID(dataDir string) (id string, created bool, err error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", false, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dataDir, serverIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id = strings.TrimSpace(string(data))
		if !validServerID(id) {
			return "", false, fmt.Errorf("read %s: %w %q (delete the file to generate a new one)", path, errInvalidServerID, id)
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read server id: %w", err)
	}
	id, err = newServerID()
	if err != nil {
		return "", false, err
	}
	if err := writeFileAtomic(path, []byte(id+"\n"), 0o644); err != nil {
		return "", false, fmt.Errorf("write server id: %w", err)
	}
	return id, true, nil
}

// newServerID returns serverIDLen uniformly random base62 characters from
// crypto/rand (bytes >= 248 are rejected so that % 62 has no bias).
func newServerID() (string, error) {
	out := make([]byte, 0, serverIDLen)
	buf := make([]byte, 2*serverIDLen)
	for len(out) < serverIDLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate server id: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(out) < serverIDLen {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out), nil
}

// validServerID accepts what newServerID produces and, leniently, any
// other short id of letters, digits, '-' and '_' an operator may have
// placed there on purpose.
func validServerID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !strings.ContainsRune(base62+"-_", r) {
			return false
		}
	}
	return true
}

// writeFileAtomic writes data to path so that a crash leaves either no file
// or the complete file: temp file in the same dir, fsync, rename, fsync the
// dir so the rename itself is durable.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
