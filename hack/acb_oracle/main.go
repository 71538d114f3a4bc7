// plandump: what acr-builder's own packages (templating, graph) make of a task file, as JSON,
// without running anything: the oracle for Dockyard's planner (hack/acb_oracle/compare.py).
// Built inside an acr-builder checkout (its vendor/ makes it offline), see compare.py.
// Run variables are fixed: ID ca1, registry reg.example, date 20261201-060405z, commit c0ffee,
// branch main. Secrets are taken from the third argument (JSON) instead of Key Vault.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/Azure/acr-builder/graph"
	"github.com/Azure/acr-builder/templating"
	"github.com/Azure/acr-builder/util"
)

type stepOut struct {
	ID         string   `json:"id"`
	Type       string   `json:"type"`
	DependsOn  []string `json:"dependsOn"`
	Tags       []string `json:"tags,omitempty"`
	BuildArgs  []string `json:"buildArgs,omitempty"`
	Dockerfile string   `json:"dockerfile,omitempty"`
	Context    string   `json:"context,omitempty"`
	Target     string   `json:"target,omitempty"`
	Images     []string `json:"images,omitempty"`
	Cmd        string   `json:"cmd,omitempty"`
	Timeout    int      `json:"timeout"`
	Retries    int      `json:"retries"`
	RetryDelay int      `json:"retryDelay"`
	Repeat     int      `json:"repeat"`
	Ignore     bool     `json:"ignoreErrors"`
	Detach     bool     `json:"detach"`
	Env        []string `json:"env"`
	WorkDir    string   `json:"workingDirectory"`
}

type out struct {
	Valid   bool      `json:"valid"`
	Error   string    `json:"error"`
	Version string    `json:"version"`
	Steps   []stepOut `json:"steps"`
}

func parseDockerBuildCmd(cmd string) (dockerfile string, target string, context string) {
	fields := strings.Fields(cmd)
	prev := ""
	context = "."
	for i := 0; i < len(fields); i++ {
		v := fields[i]
		if prev == "-f" || prev == "--file" {
			dockerfile = util.TrimQuotes(v)
		} else if prev == "--target" {
			target = util.TrimQuotes(v)
		} else if !strings.HasPrefix(prev, "-") && !strings.HasPrefix(v, "-") {
			context = util.TrimQuotes(v)
		}
		prev = v
	}
	return
}

func fail(err error) {
	b, _ := json.Marshal(out{Valid: false, Error: err.Error()})
	fmt.Println(string(b))
	os.Exit(1)
}

func main() {
	// args: taskfile valuesYAMLfile secretsJSON
	ctx := context.Background()
	date, _ := time.Parse("20060102-150405z", "20261201-060405z")
	opts := &templating.BaseRenderOptions{ID: "ca1", Commit: "c0ffee", Branch: "main", Registry: "reg.example",
		Date: date, OS: "linux", Architecture: "amd64", SharedVolume: ""}
	template, err := templating.LoadTemplate(os.Args[1])
	if err != nil {
		fail(err)
	}
	valuesRaw := ""
	if len(os.Args) > 2 && os.Args[2] != "" {
		b, _ := os.ReadFile(os.Args[2])
		valuesRaw = string(b)
	}
	secrets := map[string]string{}
	if len(os.Args) > 3 && os.Args[3] != "" {
		_ = json.Unmarshal([]byte(os.Args[3]), &secrets)
	}
	renderWith := func(t *templating.Template) (string, error) {
		if len(t.GetData()) == 0 {
			return "", nil
		}
		vals, err := templating.OverrideValuesWithBuildInfo(&templating.Config{RawValue: valuesRaw}, &templating.Config{}, opts)
		if err != nil {
			return "", err
		}
		engine := templating.NewEngine()
		result := templating.Values{}
		if strings.Contains(string(t.Data), "secrets") {
			vals["Secrets"] = result
			first, err := engine.Render(t, vals)
			if err != nil {
				return "", err
			}
			if first == "" {
				return "", fmt.Errorf("rendered template was empty")
			}
			task, err := graph.NewTaskFromString(first)
			if err != nil {
				return "", err
			}
			for _, s := range task.Secrets {
				result[s.ID] = secrets[s.ID]
			}
		}
		vals["Secrets"] = result
		rendered, err := engine.Render(t, vals)
		if err != nil {
			return "", err
		}
		if rendered == "" {
			return "", fmt.Errorf("rendered template was empty")
		}
		return rendered, nil
	}
	var alias *graph.Alias
	version := graph.FindVersion(template.GetData())
	useAlias := version >= "v1.1.0"
	if useAlias {
		aliasData, taskData := graph.SeparateAliasFromRest(template.GetData())
		renderedAlias, err := renderWith(templating.NewTemplate("aliasData", aliasData))
		if err != nil {
			fail(err)
		}
		processed, a, err := graph.SearchReplaceAlias(template.GetData(), []byte(renderedAlias), taskData)
		alias = a
		if err != nil {
			fail(err)
		}
		template.Data = processed
	}
	rendered, err := renderWith(template)
	if err != nil {
		fail(err)
	}
	task, err := graph.UnmarshalTaskFromString(ctx, rendered, &graph.TaskOptions{Registry: "reg.example"})
	if err != nil {
		fail(err)
	}
	if useAlias {
		graph.ExpandCommandAliases(alias, task)
	}
	parents := map[string][]string{}
	for name, node := range task.Dag.Nodes {
		for _, c := range node.Children() {
			parents[c.Name] = append(parents[c.Name], name)
		}
	}
	res := out{Valid: true, Version: task.Version}
	for _, s := range task.Steps {
		deps := parents[s.ID]
		sort.Strings(deps)
		if deps == nil {
			deps = []string{}
		}
		o := stepOut{ID: s.ID, DependsOn: deps, Timeout: s.Timeout, Retries: s.Retries, RetryDelay: s.RetryDelayInSeconds,
			Repeat: s.Repeat, Ignore: s.IgnoreErrors, Detach: s.Detach, Env: s.Envs, WorkDir: s.WorkingDirectory}
		if o.Env == nil {
			o.Env = []string{}
		}
		switch {
		case s.IsBuildStep():
			o.Type = "build"
			o.Tags = s.Tags
			o.BuildArgs = s.BuildArgs
			o.Dockerfile, o.Target, o.Context = parseDockerBuildCmd(s.Build)
		case s.IsPushStep():
			o.Type = "push"
			o.Images = s.Push
		default:
			o.Type = "cmd"
			o.Cmd = s.Cmd
		}
		res.Steps = append(res.Steps, o)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}
