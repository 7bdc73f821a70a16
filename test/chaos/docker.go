package chaos

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
)

//go:embed compose.yml.tmpl
var composeTemplate string

// DockerBackend runs the cluster as docker-compose containers from the
// FROM-scratch image, under a unique project name, on a private /24 no
// other network uses, with client and http ports published on 127.0.0.1.
// Faults come from the docker CLI: kill, stop/start, pause/unpause, and
// network disconnect/connect for partitions (so only whole nodes can be
// cut off: no one-way or ring partitions). Close runs `docker-compose down
// -v` and then removes by label whatever is left.
type DockerBackend struct {
	image, dir, project, compose, subnet string
	nodes                                []*dockerNode

	mu           sync.Mutex
	disconnected map[string]bool
	wiped        map[string]bool
	down         map[string]bool // killed, stopped or wiped by the harness
	crashes      []string
}

type dockerNode struct {
	Name, IP             string
	ClientPort, HTTPPort int
}

var _ Backend = (*DockerBackend)(nil)

// NewDockerBackend renders the compose file for n nodes of image into dir.
// The project name comes from CHAOS_DOCKER_PROJECT when set (the wrapper
// script uses it to clean up after a killed test) and is made unique per
// cluster size.
func NewDockerBackend(image, dir string, n int) (*DockerBackend, error) {
	prefix := os.Getenv("CHAOS_DOCKER_PROJECT")
	if prefix == "" {
		prefix = fmt.Sprintf("flotilla-chaos-%d", os.Getpid())
	}
	b := &DockerBackend{image: image, dir: dir, project: fmt.Sprintf("%s-n%d", prefix, n),
		compose: filepath.Join(dir, "compose.yml"), disconnected: map[string]bool{}, wiped: map[string]bool{},
		down: map[string]bool{}}
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	b.subnet = subnet
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var join []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		b.nodes = append(b.nodes, &dockerNode{Name: name, IP: fmt.Sprintf("%s.%d", subnet, 11+i),
			ClientPort: ports[2*i], HTTPPort: ports[2*i+1]})
		join = append(join, name+":7946")
	}
	var buf bytes.Buffer
	tmpl := template.Must(template.New("compose").Parse(composeTemplate))
	if err := tmpl.Execute(&buf, map[string]any{"Image": image, "Project": b.project, "Join": strings.Join(join, ","),
		"Nodes": b.nodes, "Subnet": subnet}); err != nil {
		return nil, fmt.Errorf("render compose file: %w", err)
	}
	if err := os.WriteFile(b.compose, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("write compose file: %w", err)
	}
	return b, nil
}

// Name implements Backend.
func (b *DockerBackend) Name() string { return "docker" }

// Capabilities implements Backend: whole nodes only.
func (b *DockerBackend) Capabilities() Capabilities { return Capabilities{} }

// Nodes implements Backend.
func (b *DockerBackend) Nodes() []string {
	out := make([]string, len(b.nodes))
	for i, n := range b.nodes {
		out[i] = n.Name
	}
	return out
}

func (b *DockerBackend) node(name string) *dockerNode {
	for _, n := range b.nodes {
		if n.Name == name {
			return n
		}
	}
	panic("chaos: unknown node " + name)
}

func (b *DockerBackend) container(node string) string { return b.project + "-" + node }
func (b *DockerBackend) network() string              { return b.project + "_chaos" }

// ClientURL implements Backend.
func (b *DockerBackend) ClientURL(node string) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", b.node(node).ClientPort)
}

// HTTPURL implements Backend.
func (b *DockerBackend) HTTPURL(node string) string {
	return fmt.Sprintf("http://127.0.0.1:%d", b.node(node).HTTPPort)
}

// docker runs the docker CLI; the error carries its output.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// composeCmd runs docker-compose on this project.
func (b *DockerBackend) composeCmd(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	full := append([]string{"-p", b.project, "-f", b.compose}, args...)
	cmd := exec.CommandContext(ctx, "docker-compose", full...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0", "COMPOSE_DOCKER_CLI_BUILD=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker-compose %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Start implements Backend.
func (b *DockerBackend) Start(ctx context.Context) error {
	return b.composeCmd(ctx, "up", "-d", "--no-build")
}

// Kill implements Backend: one `docker kill` for all of them.
func (b *DockerBackend) Kill(ctx context.Context, nodes ...string) error {
	b.setDown(true, nodes...)
	_, err := docker(ctx, append([]string{"kill"}, b.containers(nodes)...)...)
	return err
}

func (b *DockerBackend) setDown(down bool, nodes ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range nodes {
		b.down[n] = down
	}
}

func (b *DockerBackend) containers(nodes []string) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = b.container(n)
	}
	return out
}

// Stop implements Backend (SIGTERM, SIGKILL after 15 s). A paused
// container is unpaused first so that it can act on the signal.
func (b *DockerBackend) Stop(ctx context.Context, node string) error {
	if st, _ := docker(ctx, "inspect", "-f", "{{.State.Paused}}", b.container(node)); strings.TrimSpace(st) == "true" {
		if _, err := docker(ctx, "unpause", b.container(node)); err != nil {
			return err
		}
	}
	b.setDown(true, node)
	if _, err := docker(ctx, "stop", "-t", "15", b.container(node)); err != nil {
		return err
	}
	if code, _ := docker(ctx, "inspect", "-f", "{{.State.ExitCode}}", b.container(node)); strings.TrimSpace(code) != "0" {
		b.addCrash(ctx, node, fmt.Sprintf("%s exited with status %s on a graceful stop", node, strings.TrimSpace(code)))
	}
	return nil
}

func (b *DockerBackend) addCrash(ctx context.Context, node, what string) {
	log, _ := exec.CommandContext(ctx, "docker", "logs", "--tail", "300", b.container(node)).CombinedOutput()
	b.mu.Lock()
	b.crashes = append(b.crashes, what+panicLine(string(log)))
	b.mu.Unlock()
}

// Crashes implements Backend: the graceful stops that failed, and every
// container the harness did not stop that is not running.
func (b *DockerBackend) Crashes(ctx context.Context) []string {
	for _, n := range b.Nodes() {
		b.mu.Lock()
		down := b.down[n]
		b.mu.Unlock()
		if down {
			continue
		}
		st, err := docker(ctx, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", b.container(n))
		if f := strings.Fields(st); err == nil && len(f) == 2 && f[0] == "false" {
			b.setDown(true, n) // reported once
			b.addCrash(ctx, n, fmt.Sprintf("%s exited by itself (status %s)", n, f[1]))
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.crashes)
}

// Restart implements Backend: `docker start`, or, for a wiped node whose
// container and volume were removed, `docker-compose up` of that service,
// which creates both afresh.
func (b *DockerBackend) Restart(ctx context.Context, node string) error {
	b.mu.Lock()
	wiped := b.wiped[node]
	delete(b.wiped, node)
	b.down[node] = false
	b.mu.Unlock()
	if wiped {
		return b.composeCmd(ctx, "up", "-d", "--no-build", node)
	}
	_, err := docker(ctx, "start", b.container(node))
	return err
}

// Pause implements Backend.
func (b *DockerBackend) Pause(ctx context.Context, nodes ...string) error {
	_, err := docker(ctx, append([]string{"pause"}, b.containers(nodes)...)...)
	return err
}

// Resume implements Backend.
func (b *DockerBackend) Resume(ctx context.Context, nodes ...string) error {
	_, err := docker(ctx, append([]string{"unpause"}, b.containers(nodes)...)...)
	return err
}

// Wipe implements Backend: the container and its data volume are removed.
func (b *DockerBackend) Wipe(ctx context.Context, node string) error {
	if _, err := docker(ctx, "rm", "-f", "-v", b.container(node)); err != nil {
		return err
	}
	if _, err := docker(ctx, "volume", "rm", b.project+"_"+node+"-data"); err != nil {
		return err
	}
	b.mu.Lock()
	b.wiped[node] = true
	b.mu.Unlock()
	return nil
}

// Partition implements Backend: every isolated node is disconnected from
// the cluster's network (its published ports stop answering as well).
func (b *DockerBackend) Partition(ctx context.Context, p Partition) error {
	if len(p.Isolated) == 0 {
		return errors.New("docker backend: only whole nodes can be isolated")
	}
	for _, n := range p.Isolated {
		if _, err := docker(ctx, "network", "disconnect", "-f", b.network(), b.container(n)); err != nil {
			return err
		}
		b.mu.Lock()
		b.disconnected[n] = true
		b.mu.Unlock()
	}
	return nil
}

// Heal implements Backend: disconnected nodes are connected again with
// their fixed address and service-name alias.
func (b *DockerBackend) Heal(ctx context.Context) error {
	b.mu.Lock()
	var nodes []string
	for n := range b.disconnected {
		nodes = append(nodes, n)
	}
	b.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		_, err := docker(ctx, "network", "connect", "--ip", b.node(n).IP, "--alias", n, b.network(), b.container(n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.mu.Lock()
		delete(b.disconnected, n)
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// StateFile implements Backend: docker cp out of the stopped container.
func (b *DockerBackend) StateFile(ctx context.Context, node string) (string, error) {
	dst := filepath.Join(b.dir, node+"-state.db")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if _, err := docker(ctx, "cp", b.container(node)+":/data/state.db", dst); err != nil {
		return "", err
	}
	return dst, nil
}

// SaveLogs implements Backend.
func (b *DockerBackend) SaveLogs(ctx context.Context, dir string) error {
	var errs []error
	for _, n := range b.nodes {
		out, err := exec.CommandContext(ctx, "docker", "logs", b.container(n.Name)).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("logs of %s: %w", n.Name, err))
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, n.Name+".log"), out, 0o644))
	}
	return errors.Join(errs...)
}

// Close implements Backend: compose down with volumes, then anything left
// with the project's label or name is removed by force.
func (b *DockerBackend) Close() error {
	ctx := context.Background()
	downErr := b.composeCmd(ctx, "down", "-v", "--remove-orphans", "-t", "5")
	var left []string
	if out, err := docker(ctx, "ps", "-aq", "--filter", "label=flotilla.chaos="+b.project); err == nil {
		for _, id := range strings.Fields(out) {
			_, _ = docker(ctx, "rm", "-f", "-v", id)
			left = append(left, "container "+id)
		}
	}
	if out, err := docker(ctx, "network", "ls", "-q", "--filter", "name=^"+b.project+"_"); err == nil {
		for _, id := range strings.Fields(out) {
			_, _ = docker(ctx, "network", "rm", id)
			left = append(left, "network "+id)
		}
	}
	if out, err := docker(ctx, "volume", "ls", "-q", "--filter", "name=^"+b.project+"_"); err == nil {
		for _, id := range strings.Fields(out) {
			_, _ = docker(ctx, "volume", "rm", "-f", id)
			left = append(left, "volume "+id)
		}
	}
	if len(left) > 0 {
		return errors.Join(downErr, fmt.Errorf("left behind by docker-compose down, removed by force: %s", strings.Join(left, ", ")))
	}
	return downErr
}

// freeSubnet picks the first three octets of a private /24 that overlaps
// no docker network and no address of this host.
func freeSubnet() (string, error) {
	var used []*net.IPNet
	if ids, err := docker(context.Background(), "network", "ls", "-q"); err == nil && strings.TrimSpace(ids) != "" {
		args := append([]string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, strings.Fields(ids)...)
		if out, err := docker(context.Background(), args...); err == nil {
			for _, f := range strings.Fields(out) {
				if _, n, err := net.ParseCIDR(f); err == nil {
					used = append(used, n)
				}
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				used = append(used, n)
			}
		}
	}
	var cands []string
	for i := 60; i < 250; i++ {
		cands = append(cands, fmt.Sprintf("172.28.%d", i))
	}
	for i := range 256 {
		cands = append(cands, fmt.Sprintf("10.213.%d", i))
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	for _, c := range cands {
		_, n, _ := net.ParseCIDR(c + ".0/24")
		free := true
		for _, u := range used {
			if u.Contains(n.IP) || n.Contains(u.IP) {
				free = false
				break
			}
		}
		if free {
			return c, nil
		}
	}
	return "", errors.New("no free private /24 for the chaos network")
}
