// Command render is the reference for the installer's template engine: it renders cases
// with Go's own text/template, so the committed goldens say what Go prints, not what we
// believe it prints. It is run by scripts/template-goldens.sh, never by `cargo test`.
//
// The data is the fixed env of env.txt as a map[string]string, like sealer's. The engine
// adds b64enc/b64dec (as sealer does) and splitList (one of our sealer helpers, so that
// cases have lists to range over; an empty string splits to no elements, as ours does).
// missingkey=error makes Go fail where our engine fails on an undefined key; the cases only
// read defined keys, except where a case checks exactly that. undefined.txt is rendered
// with Go's default instead (an undefined key is no value, as sealer renders it): its cases
// use undefined keys only where both engines call them false.
//
// Usage:
//
//	go run render.go -env env.txt -cases cases.txt   > cases.golden.json
//	go run render.go -env env.txt -corpus corpus.json > corpus.golden.json
//	go run render.go -env env.txt -missingkey default -cases undefined.txt > undefined.golden.json
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// result is what Go did with one case: its output, or that it failed (the message is kept
// for people reading the goldens; the Rust tests only check that our engine fails too).
type result struct {
	Name  string `json:"name,omitempty"`
	Ok    bool   `json:"ok"`
	Out   string `json:"out"`
	Error string `json:"error,omitempty"`
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"b64dec": func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
			return string(b), err
		},
		"splitList": func(sep, s string) []string {
			if s == "" {
				return []string{}
			}
			return strings.Split(s, sep)
		},
	}
}

// missingKey is the text/template option for keys the env lacks.
var missingKey = "error"

func render(src string, env map[string]string) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{Ok: false, Error: fmt.Sprint("panic: ", p)}
		}
	}()
	t, err := template.New("t").Funcs(funcs()).Option("missingkey=" + missingKey).Parse(src)
	if err != nil {
		return result{Ok: false, Error: err.Error()}
	}
	var out bytes.Buffer
	if err := t.Execute(&out, env); err != nil {
		return result{Ok: false, Error: err.Error()}
	}
	return result{Ok: true, Out: out.String()}
}

func readEnv(path string) map[string]string {
	data, err := os.ReadFile(path)
	check(err)
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			check(fmt.Errorf("env line %q is not KEY=VALUE", line))
		}
		env[k] = v
	}
	return env
}

// readCases reads the hand-written cases: each starts with a line `--- name`; its template
// is the lines up to the next such line, without the final newline.
func readCases(path string) (names, srcs []string) {
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur []string
	flush := func() {
		if len(names) > len(srcs) {
			srcs = append(srcs, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "--- ") {
			flush()
			names = append(names, strings.TrimPrefix(line, "--- "))
			continue
		}
		if len(names) > 0 {
			cur = append(cur, line)
		}
	}
	check(sc.Err())
	flush()
	return names, srcs
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	envPath := flag.String("env", "env.txt", "the env, KEY=VALUE lines")
	casesPath := flag.String("cases", "", "hand-written cases")
	corpusPath := flag.String("corpus", "", "a JSON array of templates")
	flag.StringVar(&missingKey, "missingkey", "error", "text/template's missingkey option")
	flag.Parse()
	env := readEnv(*envPath)
	var results []result
	switch {
	case *casesPath != "":
		names, srcs := readCases(*casesPath)
		for i, src := range srcs {
			r := render(src, env)
			r.Name = names[i]
			results = append(results, r)
		}
	case *corpusPath != "":
		data, err := os.ReadFile(*corpusPath)
		check(err)
		var srcs []string
		check(json.Unmarshal(data, &srcs))
		for _, src := range srcs {
			results = append(results, render(src, env))
		}
	default:
		check(fmt.Errorf("give -cases or -corpus"))
	}
	// One result a line, so a diff of the goldens shows which cases changed.
	w := bufio.NewWriter(os.Stdout)
	w.WriteString("[\n")
	for i, r := range results {
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		check(enc.Encode(r))
		w.Write(bytes.TrimRight(line.Bytes(), "\n"))
		if i+1 < len(results) {
			w.WriteString(",")
		}
		w.WriteString("\n")
	}
	w.WriteString("]\n")
	check(w.Flush())
}
