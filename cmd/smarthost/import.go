package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"smarthost/config/postfix"
)

const importSynopsis = `import postfix [-root DIR] [-postfix-dir DIR] [-opendkim FILE] [-o FILE [-force]]

Reads a Postfix + OpenDKIM setup (main.cf, master.cf and the tables they
name; opendkim.conf, KeyTable and SigningTable) and writes the equivalent
smarthost.toml, to standard output or to FILE. Each value carries a
"# imported from" comment; what smarthost cannot take over is a
"# NOT TRANSLATED" comment to review. SASL passwords (Dovecot's users,
sasl_passwd) are never read. To import a copy of the old server's files,
give -root the directory that holds its etc/: the files are read below it,
and the paths written stay as on that server.`

// runImport is `smarthost import postfix`.
func runImport(args []string, io stdio) error {
	fs := newFlagSet("import", importSynopsis, io)
	root := fs.String("root", "/", "read the old server's files below this `directory`, a copy of its /")
	dir := fs.String("postfix-dir", postfix.DefaultPostfixDir, "Postfix configuration `directory` (main.cf, master.cf)")
	dkim := fs.String("opendkim", postfix.DefaultOpenDKIMConf, `opendkim.conf `+"`file`"+`; "" imports no OpenDKIM setup`)
	out := fs.String("o", "", "write to `file` instead of standard output")
	force := fs.Bool("force", false, "overwrite the -o file when it exists")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "postfix" {
		fmt.Fprintln(io.err, "smarthost import: the one source it knows is postfix")
		fs.Usage()
		return errUsage
	}
	res, err := postfix.Import(postfix.Options{Root: *root, PostfixDir: *dir, OpenDKIMConf: *dkim})
	if err != nil {
		return err
	}
	if *out == "" {
		if _, err := io.out.Write(res.TOML); err != nil {
			return err
		}
	} else if err := writeNew(*out, res.TOML, *force); err != nil {
		return err
	}
	dest, check := "standard output", "smarthost check -config FILE"
	if *out != "" {
		dest, check = *out, "smarthost check -config "+*out
	}
	fmt.Fprintf(io.err, "smarthost import: wrote %s; %d setting(s) not translated (the # NOT TRANSLATED comments). Review it, then run %s\n",
		dest, len(res.NotTranslated), check)
	return nil
}

// writeNew writes a new file, refusing to replace an existing one unless
// force is set. The configuration holds no secrets, so it is readable by
// all (the server reads it as user smarthost).
func writeNew(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return &exitError{code: 1, msg: path + " exists; use -force to overwrite it"}
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
