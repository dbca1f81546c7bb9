// Command sdk_client drives a Nexus with SPIKE's own Go SDK, the way a Go
// workload linked against spike-sdk-go would: the interop test
// (tests/spike_interop_test.ts) runs it against our Nexus.
//
// Usage:
//
//	sdk_client get <path>           prints the secret's values as JSON
//	sdk_client put <path> k=v...    writes a new version
//	sdk_client list                 prints every secret path as JSON
//
// The identity comes from the Workload API at SPIFFE_ENDPOINT_SOCKET and
// Nexus's address from SPIKE_NEXUS_API_URL, as for every SDK user. It
// exits 3 when Nexus answers "not found", 1 on any other error, 2 on
// bad usage.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	spike "github.com/spiffe/spike-sdk-go/api"
	sdkErrors "github.com/spiffe/spike-sdk-go/errors"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	api, err := spike.NewWithContext(ctx)
	if err != nil {
		fail(err)
	}
	defer func() { _ = api.Close() }()

	switch os.Args[1] {
	case "get":
		if len(os.Args) != 3 {
			usage()
		}
		secret, getErr := api.GetSecret(ctx, os.Args[2])
		if getErr != nil {
			fail(getErr)
		}
		printJSON(secret.Data)
	case "put":
		if len(os.Args) < 4 {
			usage()
		}
		values := map[string]string{}
		for _, pair := range os.Args[3:] {
			key, value, found := strings.Cut(pair, "=")
			if !found {
				usage()
			}
			values[key] = value
		}
		if putErr := api.PutSecret(ctx, os.Args[2], values); putErr != nil {
			fail(putErr)
		}
	case "list":
		keys, listErr := api.ListSecretKeys(ctx)
		if listErr != nil {
			fail(listErr)
		}
		printJSON(keys)
	default:
		usage()
	}
}

func printJSON(value any) {
	out, err := json.Marshal(value)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk_client:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

func fail(err *sdkErrors.SDKError) {
	fmt.Fprintf(os.Stderr, "sdk_client: %s: %v\n", err.Code, err)
	if err.Is(sdkErrors.ErrAPINotFound) {
		os.Exit(3)
	}
	os.Exit(1)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sdk_client get <path> | put <path> k=v... | list")
	os.Exit(2)
}
