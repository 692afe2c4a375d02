package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/store"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make and rotate the keys of a store (--store): its keyring, and its seal",
		Long: "keys new makes a keyring, whose current key encrypts a store's new segments, and\n" +
			"keys rotate gives it a new current key, keeping the old ones to read old segments.\n" +
			"With --recipient, keys are also kept wrapped for age recipients, and a key that is\n" +
			"no longer current is kept only so: the host can no longer read what it encrypted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError("keys needs a subcommand: new, rotate or list (icptrack keys --help)")
		},
	}
	cmd.AddCommand(newKeysNewCommand(), newKeysRotateCommand(), newKeysListCommand())
	return cmd
}

type keysFlags struct {
	keyring    string
	recipients []string
	store      string
	sealEvery  time.Duration
}

func (f *keysFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.keyring, "keyring", "", "the keyring file (store.key_file)")
	cmd.Flags().StringArrayVar(&f.recipients, "recipient", nil,
		"an age recipient (age1…) to keep every key wrapped for; repeat for more. Old keys are then kept only wrapped")
}

func newKeysNewCommand() *cobra.Command {
	var f keysFlags
	cmd := &cobra.Command{
		Use:   "new [--keyring FILE [--recipient age1…]...] [--store DIR [--seal-every D]]",
		Short: "Make a keyring with one new key, and start sealing a store",
		Long: "new --keyring FILE makes a keyring with one key, for store.key_file: the store's new\n" +
			"segments are then encrypted. new --store DIR starts sealing the store in DIR against\n" +
			"rewriting (made if missing) and prints its verification key, once: keep it off this\n" +
			"host, and give it to icptrack verify --verify-key. Either or both.",
		Example: "  icptrack keys new --keyring /etc/icptrack/keyring --store /var/lib/icptrack/store\n" +
			"  icptrack keys new --keyring /etc/icptrack/keyring --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.keyring == "" && f.store == "" {
				return usageError("keys new needs --keyring FILE (a keyring to encrypt with), --store DIR (a store to seal), or both")
			}
			if f.store != "" && (f.sealEvery < time.Second || f.sealEvery%time.Second != 0) {
				return usageError("--seal-every %s: use whole seconds of at least 1s, such as 15m", f.sealEvery)
			}
			if f.keyring != "" {
				kr, err := store.NewKeyring(f.keyring, f.recipients)
				if err != nil {
					return keyError(err)
				}
				printKeyring(os.Stdout, kr)
			}
			if f.store != "" {
				vk, err := store.CreateSeal(f.store, f.sealEvery, time.Now())
				if err != nil {
					return keyError(err)
				}
				fmt.Printf("store %s is sealed every %s from now on. Its verification key, shown only this once;\n"+
					"keep it off this host (icptrack verify %s --verify-key KEY):\n%s\n", f.store, f.sealEvery, f.store, vk)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.store, "store", "", "start sealing the store in this directory, and print its verification key")
	cmd.Flags().DurationVar(&f.sealEvery, "seal-every", store.DefaultSealEvery, "with --store: how often the chain is sealed and the seal key moved on")
	return cmd
}

func newKeysRotateCommand() *cobra.Command {
	var f keysFlags
	cmd := &cobra.Command{
		Use:   "rotate --keyring FILE [--recipient age1…]...",
		Short: "Give a keyring a new current key; new segments use it",
		Long: "rotate adds a new current key to the keyring. A running icptrack takes it up at its next\n" +
			"segment. Old keys stay to read old segments: in the clear, or with age recipients (the\n" +
			"keyring's, or --recipient, which replaces them) only wrapped for those.",
		Example: "  icptrack keys rotate --keyring /etc/icptrack/keyring",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.keyring == "" {
				return usageError("keys rotate needs --keyring FILE: the keyring to rotate")
			}
			kr, err := store.LoadKeyring(f.keyring)
			if err != nil {
				return keyError(err)
			}
			var rcpts []string
			if cmd.Flags().Changed("recipient") {
				rcpts = f.recipients
			}
			if err := kr.Rotate(rcpts); err != nil {
				return keyError(err)
			}
			printKeyring(os.Stdout, kr)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newKeysListCommand() *cobra.Command {
	var f keysFlags
	cmd := &cobra.Command{
		Use:   "list [--keyring FILE]",
		Short: "List a keyring's keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := store.ResolveKeyFile(f.keyring)
			if path == "" {
				return usageError("keys list needs --keyring FILE (or $CREDENTIALS_DIRECTORY/%s)", store.CredentialName)
			}
			kr, err := store.LoadKeyring(path)
			if err != nil {
				return keyError(err)
			}
			printKeyring(os.Stdout, kr)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.keyring, "keyring", "", "the keyring file")
	return cmd
}

func printKeyring(w io.Writer, kr *store.Keyring) {
	fmt.Fprintf(w, "keyring %s\n", kr.Path)
	for _, k := range kr.Keys {
		state := "old, for reading"
		switch {
		case k.Current:
			state = "current"
		case !k.Readable():
			state = "old, only wrapped for the recipients"
		}
		fmt.Fprintf(w, "  key %s  created %s  %s\n", k.ID, k.Created.Format("2006-01-02 15:04:05Z07:00"), state)
	}
	for _, r := range kr.Recipients {
		fmt.Fprintf(w, "  recipient %s\n", r)
	}
}

// keyError is a key that cannot be made, read or used: a usage error.
func keyError(err error) error {
	return &exitError{code: exitUsage, err: err}
}
