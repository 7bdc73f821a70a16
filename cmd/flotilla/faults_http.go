package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
)

// faultsRequest is the body of POST /debug/faults/block and
// /debug/faults/heal.
type faultsRequest struct {
	// Addrs are peer cluster and/or gossip addresses (host:port, as the
	// peer advertises them).
	Addrs []string `json:"addrs"`
	// Direction is "in", "out" or "both" (the default); block only.
	Direction string `json:"direction"`
}

// faultsState is what every faults endpoint answers: the blocked
// addresses and their directions.
type faultsState struct {
	Blocked map[string]string `json:"blocked"`
}

// maxFaultsBody bounds a request body; a real one is a few hundred bytes.
const maxFaultsBody = 64 << 10

// registerFaultHandlers serves the fault-injection endpoints. It is called
// only with --unsafe-fault-injection; without it the paths do not exist.
//
//	GET  /debug/faults        {"blocked":{"127.0.0.1:7101":"both"}}
//	POST /debug/faults/block  {"addrs":[...],"direction":"in"|"out"|"both"}
//	POST /debug/faults/heal   {} heals everything, {"addrs":[...]} those only
//
// Blocks accumulate: blocking "in" then "out" on an address gives "both".
// See cluster.Faults for what each direction does to each link.
func registerFaultHandlers(mux *http.ServeMux, f *cluster.Faults, log *zap.Logger) {
	mux.HandleFunc("GET /debug/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, faultsStateOf(f))
	})
	mux.HandleFunc("POST /debug/faults/block", func(w http.ResponseWriter, r *http.Request) {
		req, err := readFaultsRequest(w, r)
		if err == nil && len(req.Addrs) == 0 {
			err = errors.New("addrs: at least one peer address is required")
		}
		var d cluster.Direction
		if err == nil {
			d, err = cluster.ParseDirection(req.Direction)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		f.BlockDirection(d, req.Addrs...)
		log.Info("fault injected", zap.Strings("addrs", req.Addrs), zap.Stringer("direction", d))
		writeJSON(w, http.StatusOK, faultsStateOf(f))
	})
	mux.HandleFunc("POST /debug/faults/heal", func(w http.ResponseWriter, r *http.Request) {
		req, err := readFaultsRequest(w, r)
		if err == nil && req.Direction != "" {
			err = errors.New("direction: heal restores both directions, leave it out")
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if len(req.Addrs) == 0 {
			f.UnblockAll()
		} else {
			f.Unblock(req.Addrs...)
		}
		log.Info("faults healed", zap.Strings("addrs", req.Addrs))
		writeJSON(w, http.StatusOK, faultsStateOf(f))
	})
}

// readFaultsRequest decodes one JSON object with known fields only; an
// empty body is an empty request.
func readFaultsRequest(w http.ResponseWriter, r *http.Request) (faultsRequest, error) {
	var req faultsRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFaultsBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("body: %w", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return req, errors.New("body: want a single JSON object")
	}
	for _, a := range req.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return req, fmt.Errorf("addrs: %q is not a host:port address", a)
		}
	}
	return req, nil
}

func faultsStateOf(f *cluster.Faults) faultsState {
	st := faultsState{Blocked: map[string]string{}}
	for a, d := range f.Blocked() {
		st.Blocked[a] = d.String()
	}
	return st
}
