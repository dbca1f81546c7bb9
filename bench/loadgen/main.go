// Command loadgen drives one HTTPS endpoint over mutual TLS with a fixed
// number of kept-alive HTTP/1.1 connections, for a fixed time or request
// count, and prints one JSON object: requests per second, latency
// percentiles, errors, and (with -server-pid) the server process's CPU time
// per request read from /proc. With -new-conn every request opens its own
// connection (a full TLS handshake, or a resumed one with -resume), to
// measure handshakes per second.
//
// It exists so that benchmarks of a single-threaded Deno server are not
// driven by another single-threaded Deno client: this client runs on its
// own threads and costs the server nothing but its requests.
//
// The server is authenticated by its X.509-SVID: the chain must verify to
// the trust bundle and the leaf's only URI SAN must be -server-id (no host
// name checks, as with SPIFFE).
//
// Standard library only, so building it needs no downloads.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	url        string
	method     string
	body       string
	bodyFile   string
	svidDir    string
	serverID   string
	conns      int
	duration   time.Duration
	requests   int64
	warmup     int
	serverPID  int
	clockTicks int
	expect     int
	timeout    time.Duration
	modulo     int64
	newConn    bool
	resume     bool
}

type result struct {
	URL            string  `json:"url"`
	Method         string  `json:"method"`
	Connections    int     `json:"connections"`
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
	Seconds        float64 `json:"seconds"`
	RequestsPerSec float64 `json:"rps"`
	P50Ms          float64 `json:"p50_ms"`
	P90Ms          float64 `json:"p90_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	ServerCPUMs    float64 `json:"server_cpu_ms,omitempty"`
	CPUUsPerReq    float64 `json:"server_cpu_us_per_request,omitempty"`
	LoadAvg        string  `json:"load_average,omitempty"`
	NewConns       bool    `json:"new_connections,omitempty"`
	Resumed        int64   `json:"resumed,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "request URL (https://host:port/path?query); {i} is replaced by a request number")
	flag.StringVar(&o.method, "method", "GET", "HTTP method")
	flag.StringVar(&o.body, "body", "", "request body; {i} is replaced by a request number unique in the run")
	flag.StringVar(&o.bodyFile, "body-file", "", "read the request body from this file instead of -body")
	flag.StringVar(&o.svidDir, "svid-dir", "", "client SVID directory: svid.pem, svid_key.pem, svid_bundle.pem")
	flag.StringVar(&o.serverID, "server-id", "", "the SPIFFE ID the server must present")
	flag.IntVar(&o.conns, "conns", 1, "connections, each with one request in flight")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long to send requests")
	flag.Int64Var(&o.requests, "requests", 0, "stop after this many requests (0: only -duration bounds the run)")
	flag.IntVar(&o.warmup, "warmup", 1, "untimed requests per connection before the run (they open the connections)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "process whose CPU time (utime+stime) is measured over the run")
	flag.IntVar(&o.clockTicks, "clock-ticks", 100, "USER_HZ of /proc/<pid>/stat (100 on Linux)")
	flag.IntVar(&o.expect, "expect", 200, "status code that counts as success")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.Int64Var(&o.modulo, "modulo", 0, "when > 0, {i} counts 0..modulo-1 over and over (reads of a fixed set)")
	flag.BoolVar(&o.newConn, "new-conn", false, "open a new connection (a TLS handshake) for every request instead of keeping one per worker")
	flag.BoolVar(&o.resume, "resume", false, "offer TLS session resumption (a client session cache shared by the workers); with -new-conn")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.url == "" || o.svidDir == "" || o.serverID == "" {
		return errors.New("-url, -svid-dir and -server-id are required")
	}
	if o.conns < 1 || o.conns > 1024 {
		return errors.New("-conns must be within 1..1024")
	}
	if o.duration <= 0 || o.duration > time.Hour {
		return errors.New("-duration must be within (0, 1h]")
	}
	body := o.body
	if o.bodyFile != "" {
		raw, err := os.ReadFile(o.bodyFile)
		if err != nil {
			return err
		}
		body = string(raw)
	}
	tlsConfig, err := clientTLS(o.svidDir, o.serverID)
	if err != nil {
		return err
	}
	if o.resume {
		tlsConfig.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	var resumed atomic.Int64

	clients := make([]*http.Client, o.conns)
	for i := range clients {
		// One transport per worker, one connection each: the connection count is fixed.
		transport := &http.Transport{
			TLSClientConfig:     tlsConfig,
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			DisableKeepAlives:   o.newConn,
			// A non-nil empty map turns HTTP/2 off: HTTP/1.1 keep-alive, as the servers under test speak.
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		}
		clients[i] = &http.Client{Transport: transport, Timeout: o.timeout}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	var counter atomic.Int64
	send := func(c *http.Client) error {
		i := counter.Add(1)
		if o.modulo > 0 {
			i %= o.modulo
		}
		n := strconv.FormatInt(i, 10)
		var reader io.Reader
		if body != "" {
			reader = strings.NewReader(strings.ReplaceAll(body, "{i}", n))
		}
		request, err := http.NewRequest(o.method, strings.ReplaceAll(o.url, "{i}", n), reader)
		if err != nil {
			return err
		}
		if body != "" {
			request.Header.Set("Content-Type", "application/json")
		}
		response, err := c.Do(request)
		if err != nil {
			return err
		}
		if response.TLS != nil && response.TLS.DidResume {
			resumed.Add(1)
		}
		// Read to the end so the connection is reused.
		_, copyErr := io.Copy(io.Discard, response.Body)
		response.Body.Close()
		if copyErr != nil {
			return copyErr
		}
		if response.StatusCode != o.expect {
			return fmt.Errorf("status %d", response.StatusCode)
		}
		return nil
	}

	// Warm-up opens every connection (TLS handshakes are not part of the run).
	var warm sync.WaitGroup
	warmErrors := make([]error, o.conns)
	for i, c := range clients {
		warm.Add(1)
		go func(i int, c *http.Client) {
			defer warm.Done()
			for j := 0; j < o.warmup; j++ {
				if err := send(c); err != nil {
					warmErrors[i] = err
					return
				}
			}
		}(i, c)
	}
	warm.Wait()
	for _, err := range warmErrors {
		if err != nil {
			return fmt.Errorf("warm-up request failed: %w", err)
		}
	}

	resumed.Store(0)
	cpuBefore, cpuErr := processCPU(o.serverPID, o.clockTicks)
	var started atomic.Int64
	var errorCount atomic.Int64
	var firstError atomic.Value
	latencies := make([][]time.Duration, o.conns)
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *http.Client) {
			defer wg.Done()
			own := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				if o.requests > 0 && started.Add(1) > o.requests {
					break
				}
				t0 := time.Now()
				if err := send(c); err != nil {
					errorCount.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
					continue
				}
				own = append(own, time.Since(t0))
			}
			latencies[i] = own
		}(i, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuAfter, cpuErr2 := processCPU(o.serverPID, o.clockTicks)

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	r := result{
		URL:            o.url,
		Method:         o.method,
		Connections:    o.conns,
		Requests:       int64(len(all)),
		Errors:         errorCount.Load(),
		Seconds:        elapsed.Seconds(),
		RequestsPerSec: float64(len(all)) / elapsed.Seconds(),
		P50Ms:          percentile(all, 50),
		P90Ms:          percentile(all, 90),
		P99Ms:          percentile(all, 99),
		MaxMs:          percentile(all, 100),
		LoadAvg:        loadAverage(),
		NewConns:       o.newConn,
		Resumed:        resumed.Load(),
	}
	if e, ok := firstError.Load().(string); ok {
		r.FirstError = e
	}
	if o.serverPID > 0 {
		if cpuErr != nil {
			return cpuErr
		}
		if cpuErr2 != nil {
			return fmt.Errorf("server process gone during the run: %w", cpuErr2)
		}
		r.ServerCPUMs = float64(cpuAfter-cpuBefore) / float64(time.Millisecond)
		if len(all) > 0 {
			r.CPUUsPerReq = float64(cpuAfter-cpuBefore) / float64(time.Microsecond) / float64(len(all))
		}
	}
	out, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// clientTLS presents the SVID in dir and accepts only a server whose chain
// verifies to the bundle and whose leaf's one URI SAN is serverID.
func clientTLS(dir, serverID string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "svid.pem"), filepath.Join(dir, "svid_key.pem"))
	if err != nil {
		return nil, fmt.Errorf("client SVID: %w", err)
	}
	bundlePEM, err := os.ReadFile(filepath.Join(dir, "svid_bundle.pem"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundlePEM) {
		return nil, errors.New("trust bundle holds no certificate")
	}
	verify := func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return errors.New("server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(rawCerts))
		for i, raw := range rawCerts {
			c, err := x509.ParseCertificate(raw)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		intermediates := x509.NewCertPool()
		for _, c := range certs[1:] {
			intermediates.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: intermediates,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			return err
		}
		if len(certs[0].URIs) != 1 || certs[0].URIs[0].String() != serverID {
			return fmt.Errorf("server is not %s", serverID)
		}
		return nil
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Verification is done by verify above: by SPIFFE ID, not host name.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
		MinVersion:            tls.VersionTLS12,
	}, nil
}

// processCPU is the user+system CPU time of pid so far, from /proc/<pid>/stat.
func processCPU(pid, ticks int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
	text := string(raw)
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	fields := strings.Fields(text[end+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable utime/stime")
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(ticks), nil
}

func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 3 {
		return ""
	}
	return strings.Join(fields[:3], " ")
}

// percentile by the nearest-rank method over sorted durations, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return float64(sorted[rank-1]) / float64(time.Millisecond)
}
