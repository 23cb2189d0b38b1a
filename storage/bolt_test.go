package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadAll(t *testing.T, s Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := s.Load(context.Background(), func(k string, v []byte) error {
		got[k] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBoltCommitSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Commit(ctx, &Batch{Puts: map[string][]byte{"a": []byte("1"), "b": []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &Batch{Puts: map[string][]byte{"a": []byte("3")}, Deletes: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := loadAll(t, s); len(got) != 1 || got["a"] != "3" {
		t.Fatalf("after reopening: %v", got)
	}
}

func TestBoltOpenFailures(t *testing.T) {
	locked := t.TempDir()
	holder, err := OpenBolt(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, FileName), []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, reason string
	}{
		{"locked by another process", locked, "locked by another process"},
		{"corrupt file", corrupt, "opening storage file"},
		{"directory cannot be created", filepath.Join(notADir, "data"), "creating storage directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenBolt(tc.dir)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestBoltCommitAfterCloseFails(t *testing.T) {
	s, err := OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Commit(context.Background(), &Batch{Puts: map[string][]byte{"a": nil}}); err == nil {
		t.Fatal("commit on a closed store succeeded")
	}
}
