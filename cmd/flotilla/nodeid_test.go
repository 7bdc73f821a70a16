package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadServerID_PersistsAcrossStarts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "data") // created on first start
	id1, created, err := loadServerID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(id1) != serverIDLen || !validServerID(id1) {
		t.Fatalf("first start: id %q created %v", id1, created)
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("data dir: %v %v", info, err)
	}
	id2, created, err := loadServerID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created || id2 != id1 {
		t.Fatalf("second start: id %q created %v, want %q reused", id2, created, id1)
	}
	// No temp files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != serverIDFile {
		t.Fatalf("data dir holds %v, want only %s", entries, serverIDFile)
	}
}

func TestLoadServerID_DistinctDirsDistinctIDs(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 20 {
		id, _, err := loadServerID(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestLoadServerID_RejectsGarbage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, serverIDFile), []byte("not an id!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadServerID(dir)
	if !errors.Is(err, errInvalidServerID) {
		t.Fatalf("err = %v, want errInvalidServerID", err)
	}
}

func TestLoadServerID_KeepsOperatorID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, serverIDFile), []byte("my-node_1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, created, err := loadServerID(dir)
	if err != nil || created || id != "my-node_1" {
		t.Fatalf("got %q %v %v", id, created, err)
	}
}

func TestLoadServerID_DataDirIsAFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadServerID(file)
	if err == nil || !strings.Contains(err.Error(), "create data dir") {
		t.Fatalf("err = %v", err)
	}
}
