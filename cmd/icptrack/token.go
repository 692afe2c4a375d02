package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/icptrack/icptrack/api/auth"
	"github.com/icptrack/icptrack/api/auth/credential"
	"github.com/icptrack/icptrack/internal/config"
)

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make credentials for the API (--api): tokens, and password hashes for basic auth",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError("token needs a subcommand: new or hash-password (icptrack token --help)")
		},
	}
	cmd.AddCommand(newTokenNewCommand(), newTokenHashPasswordCommand())
	return cmd
}

func newTokenNewCommand() *cobra.Command {
	var scope, name, expires string
	cmd := &cobra.Command{
		Use:   "new --scope read[,read:payload,admin] [--name N] [--expires D]",
		Short: "Make an API token: print it once, and the line to add under api.tokens",
		Long: "new makes a random bearer token and prints it, once, then the line to add under\n" +
			"api.tokens in the configuration file: the token's name, its SHA-256 hash (the token\n" +
			"itself is not kept), its scopes, and when it expires. Scopes: read sees operations\n" +
			"without payload, read:payload also payloads, admin also status details.",
		Example: "  icptrack token new --scope read --name grafana --expires 90d",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopes, err := tokenScopes(scope)
			if err != nil {
				return err
			}
			tok, hash, err := credential.NewToken()
			if err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			if name == "" {
				name = "token-" + hash[len("sha256:"):][:8]
			}
			if !config.CredentialName.MatchString(name) {
				return usageError("--name %q is not a name: use letters, digits, and . _ @ -", name)
			}
			line := fmt.Sprintf(`    - {name: %s, hash: "%s", scopes: [%s]`, name, hash, strings.Join(scopes, ", "))
			if expires != "" {
				at, err := expiry(expires, time.Now())
				if err != nil {
					return err
				}
				line += ", expires: " + at.Format(time.RFC3339)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, tok)
			fmt.Fprintln(out, "# The token above is shown only now: keep it secret. Add this line under api.tokens:")
			fmt.Fprintln(out, line+"}")
			return nil
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "", "the token's scopes, comma-separated: read, read:payload, admin")
	cmd.Flags().StringVar(&name, "name", "", "the token's name, in logs and the configuration (default token-HASHPREFIX)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the token stops working: a duration from now (90d, 2w, 12h) or an RFC 3339 time (default: never)")
	return cmd
}

func tokenScopes(s string) ([]string, error) {
	if s == "" {
		return nil, usageError("--scope is required: read, read:payload or admin (comma-separated for more)")
	}
	scopes, err := credential.ParseScopes(s)
	if err != nil {
		return nil, usageError("--scope: %v", err)
	}
	return scopes, nil
}

// expiry reads --expires: an age from now, or a time.
func expiry(s string, now time.Time) (time.Time, error) {
	if d, err := config.ParseAge(s); err == nil {
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError("--expires %q is neither a duration (90d, 2w, 12h) nor an RFC 3339 time (2027-01-01T00:00:00Z)", s)
	}
	if !at.After(now) {
		return time.Time{}, usageError("--expires %s is in the past", s)
	}
	return at.UTC(), nil
}

func newTokenHashPasswordCommand() *cobra.Command {
	var scope, name string
	cmd := &cobra.Command{
		Use:   "hash-password [--name N] [--scope read[,read:payload,admin]] < PASSWORD",
		Short: "Hash a password read from standard input, for a basic-auth user under api.users",
		Long: "hash-password reads one line, a password, from standard input (without echo on a\n" +
			"terminal), and prints the line to add under api.users: the name, the password's\n" +
			"argon2id hash, and the scopes.",
		Example: "  icptrack token hash-password --name alice --scope read,admin",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopes, err := tokenScopes(scope)
			if err != nil {
				return err
			}
			if !config.CredentialName.MatchString(name) {
				return usageError("--name %q is not a name: use letters, digits, and . _ @ -", name)
			}
			password, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			hash, err := auth.HashPassword(password)
			if err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "    - {name: %s, hash: \"%s\", scopes: [%s]}\n", name, hash, strings.Join(scopes, ", "))
			return nil
		},
	}
	user := os.Getenv("USER")
	if !config.CredentialName.MatchString(user) {
		user = "user"
	}
	cmd.Flags().StringVar(&name, "name", user, "the user's name, for basic auth")
	cmd.Flags().StringVar(&scope, "scope", "read", "the user's scopes, comma-separated: read, read:payload, admin")
	return cmd
}

// readPassword reads a line: from a terminal without echo, after a prompt.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	var password string
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", &exitError{code: exitFailure, err: fmt.Errorf("cannot read the password: %w", err)}
		}
		password = string(b)
	} else {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", &exitError{code: exitFailure, err: fmt.Errorf("cannot read the password: %w", err)}
		}
		password = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	}
	if password == "" {
		return "", usageError("the password is empty: give it on standard input, such as icptrack token hash-password < passwordfile")
	}
	return password, nil
}
