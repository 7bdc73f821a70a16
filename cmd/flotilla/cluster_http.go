package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/flotilla/flotilla/cluster"
)

// clusterAdmin is what the http listener needs from the cluster node.
type clusterAdmin interface {
	Status() cluster.Status
	RemoveNode(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
}

var _ clusterAdmin = (*cluster.Node)(nil)

// adminTimeout bounds one membership operation (it may wait for an
// election first).
const adminTimeout = 30 * time.Second

// registerClusterHandlers serves the cluster endpoints on any node; changes
// are forwarded to the leader by the cluster package.
//
//	GET  /cluster/status                   this node's view (members, Raft configuration, leader, indexes)
//	POST /cluster/remove?node=ID           decommission a node
//	POST /cluster/transfer-leader[?node=ID] move leadership (to ID, or to the best follower)
func registerClusterHandlers(mux *http.ServeMux, c clusterAdmin) {
	mux.HandleFunc("GET /cluster/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.Status())
	})
	mux.HandleFunc("POST /cluster/remove", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("node")
		if id == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "missing ?node=ID"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
		defer cancel()
		writeAdminResult(w, c.RemoveNode(ctx, id), map[string]string{"status": "removed", "node": id})
	})
	mux.HandleFunc("POST /cluster/transfer-leader", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
		defer cancel()
		err := c.TransferLeadership(ctx, r.URL.Query().Get("node"))
		writeAdminResult(w, err, map[string]string{"status": "transferred"})
	})
}

// writeAdminResult maps cluster errors onto http statuses.
func writeAdminResult(w http.ResponseWriter, err error, ok any) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ok)
	case errors.Is(err, cluster.ErrUnknownNode):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, cluster.ErrQuorum):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrTimeout):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}
