package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// The env file (`--env-file` or VITALS_ENV_FILE) is the file `vitalsctl
// host add` prints and the systemd units name in EnvironmentFile=. cron
// has no EnvironmentFile=, so the reporter reads the file itself, and it
// must read it exactly as systemd does: otherwise a value with quotes, a
// comment or a continuation line would mean one thing under the unit and
// another under cron. parseEnvFile is a port of systemd's parser
// (parse_env_file_internal in src/basic/env-file.c, as of v254+).

// envVar is one assignment, in file order.
type envVar struct{ key, value string }

// maxEnvFileBytes bounds the file: it holds a few short lines.
const maxEnvFileBytes = 64 << 10

// readEnvFile reads and parses an env file, warning on stderr when others
// can read it (it holds the host key) and for each line systemd would
// ignore.
func readEnvFile(path string, stderr io.Writer) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only; a close error loses nothing
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "warning: env file %s is readable by other users (mode %o); chmod 600 it\n", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxEnvFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	if len(b) > maxEnvFileBytes {
		return nil, fmt.Errorf("env file %s: larger than %d bytes", path, maxEnvFileBytes)
	}
	vars, ignored := parseEnvFile(b)
	for _, k := range ignored {
		fmt.Fprintf(stderr, "warning: env file %s: ignoring the assignment to %q: not a valid variable name (systemd ignores it too)\n", path, k)
	}
	m := make(map[string]string, len(vars))
	for _, v := range vars {
		m[v.key] = v.value // a later assignment wins, as in systemd
	}
	return m, nil
}

// parseEnvFile parses KEY=VALUE lines the way systemd's EnvironmentFile=
// does (systemd.exec(5)):
//   - empty lines and lines starting with '#' or ';' are comments; lines
//     without '=' are ignored; whitespace around the key and '=' is dropped;
//   - an unquoted value keeps interior whitespace, loses trailing
//     whitespace, and takes '\x' as x; a backslash before a newline joins
//     the next line;
//   - '...' keeps everything verbatim, across lines;
//   - "..." unescapes \" \\ \` \$ and joins lines at \<newline>; any other
//     backslash stays;
//   - quoted and unquoted parts next to each other are concatenated.
//
// Assignments whose key is not a valid variable name, or that are not
// UTF-8, are returned in ignored (systemd drops them with a warning).
func parseEnvFile(b []byte) (vars []envVar, ignored []string) {
	const (
		preKey = iota
		inKey
		preValue
		inValue
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	const (
		comments  = "#;"
		space     = " \t\n\r"
		newline   = "\n\r"
		needsEsc  = "\"\\`$"
		noneSoFar = -1
	)
	// systemd reads a C string: a NUL ends the content.
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	var key, value []byte
	lastKeySpace, lastValueSpace := noneSoFar, noneSoFar
	state := preKey
	push := func(trimValue bool) {
		if trimValue && lastValueSpace != noneSoFar {
			value = value[:lastValueSpace]
		}
		if lastKeySpace != noneSoFar {
			key = key[:lastKeySpace]
		}
		k, v := string(key), string(value)
		if validEnvName(k) && utf8.ValidString(v) {
			vars = append(vars, envVar{k, v})
		} else {
			ignored = append(ignored, k)
		}
		key, value = key[:0], nil
	}
	in := func(set string, c byte) bool { return strings.IndexByte(set, c) >= 0 }
	for _, c := range b {
		switch state {
		case preKey:
			if in(comments, c) {
				state = comment
			} else if !in(space, c) {
				state = inKey
				lastKeySpace = noneSoFar
				key = append(key, c)
			}
		case inKey:
			switch {
			case in(newline, c):
				state = preKey
				key = key[:0]
			case c == '=':
				state = preValue
				lastValueSpace = noneSoFar
			default:
				if !in(space, c) {
					lastKeySpace = noneSoFar
				} else if lastKeySpace == noneSoFar {
					lastKeySpace = len(key)
				}
				key = append(key, c)
			}
		case preValue:
			switch {
			case in(newline, c):
				state = preKey
				push(false)
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !in(space, c):
				state = inValue
				value = append(value, c)
			}
		case inValue:
			switch {
			case in(newline, c):
				state = preKey
				push(true)
			case c == '\\':
				state = valueEscape
				lastValueSpace = noneSoFar
			default:
				if !in(space, c) {
					lastValueSpace = noneSoFar
				} else if lastValueSpace == noneSoFar {
					lastValueSpace = len(value)
				}
				value = append(value, c)
			}
		case valueEscape:
			state = inValue
			if !in(newline, c) {
				value = append(value, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				value = append(value, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				value = append(value, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case in(needsEsc, c):
				value = append(value, c)
			case c != '\n':
				value = append(value, '\\', c)
			}
		case comment:
			if c == '\\' {
				state = commentEscape
			} else if in(newline, c) {
				state = preKey
			}
		case commentEscape:
			if in(newline, c) {
				state = preKey
			} else {
				state = comment
			}
		}
	}
	switch state {
	case preValue, inValue, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		push(state == inValue)
	}
	return vars, ignored
}

// validEnvName is systemd's env_name_is_valid: letters, digits and '_', not
// starting with a digit.
func validEnvName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
