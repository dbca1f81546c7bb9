// Command compose-check loads a compose file with compose-go, the loader
// Docker Compose itself uses (schema validation, interpolation, merges,
// profiles), and prints every service's normalized command, environment
// names, health check, dependencies, volumes and secrets as JSON for
// tests/compose_test.ts and tests/compose_run_test.ts.
// It exits non-zero with the loader's message when the file does not load.
//
// Usage: compose-check <compose.yaml> [profile...]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

type service struct {
	Name        string            `json:"name"`
	Image       string            `json:"image"`
	Entrypoint  []string          `json:"entrypoint"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Healthcheck []string          `json:"healthcheck"`
	DependsOn   map[string]string `json:"dependsOn"`
	Profiles    []string          `json:"profiles"`
	User        string            `json:"user"`
	Volumes     []mount           `json:"volumes"`
	Secrets     []mount           `json:"secrets"`
}

// A volume or secret as the container sees it: what (a named volume, a
// host path or a secret's file) appears where.
type mount struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check <compose.yaml> [profile...]")
		os.Exit(2)
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithName("spike-check"),
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithProfiles(os.Args[2:]),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	names := make([]string, 0, len(project.Services))
	for name := range project.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]service, 0, len(names))
	for _, name := range names {
		s := project.Services[name]
		env := map[string]string{}
		for key, value := range s.Environment {
			if value != nil {
				env[key] = *value
			} else {
				env[key] = ""
			}
		}
		deps := map[string]string{}
		for dep, config := range s.DependsOn {
			deps[dep] = config.Condition
		}
		volumes := []mount{}
		for _, v := range s.Volumes {
			volumes = append(volumes, mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
		}
		secrets := []mount{}
		for _, ref := range s.Secrets {
			target := ref.Target
			if target == "" {
				target = "/run/secrets/" + ref.Source
			}
			secrets = append(secrets, mount{Type: "secret", Source: project.Secrets[ref.Source].File, Target: target, ReadOnly: true})
		}
		var health []string
		if s.HealthCheck != nil && !s.HealthCheck.Disable {
			health = s.HealthCheck.Test
		}
		out = append(out, service{
			Name:        name,
			Image:       s.Image,
			Entrypoint:  s.Entrypoint,
			Command:     s.Command,
			Environment: env,
			Healthcheck: health,
			DependsOn:   deps,
			Profiles:    s.Profiles,
			User:        s.User,
			Volumes:     volumes,
			Secrets:     secrets,
		})
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
