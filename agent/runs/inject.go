package runs

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Files on the run's tmpfs.
const (
	envFile   = "env"
	tokenFile = "token"
	filesDir  = "files"
)

// tmpfsSize bounds a run's tmpfs: secrets are at most 1 MiB each.
const tmpfsSize = "64m"

// injection is how a run receives its secrets.
type injection struct {
	// env holds variables that are not secret, such as file paths.
	env []string
	// secretEnv holds variables whose values are secret; only the
	// entrypoint sees them, through the env file on the tmpfs.
	secretEnv []string
	mounts    []runtime.Mount
	// registry holds docker credentials by server.
	registry map[string][2]string
	events   []string
}

// mountTmpfs makes dir a private tmpfs (noexec, nosuid, nodev, 0700),
// owned by the run's user when it has one. When the agent may not mount,
// as when it does not run as root, it falls back to a 0700 directory and
// says so: /dev/shm and /run are tmpfs on most systems.
func mountTmpfs(dir string, owner *runtime.User) (fallback bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create run dir: %w", err)
	}
	opts := "mode=0700,size=" + tmpfsSize
	if owner != nil {
		opts += fmt.Sprintf(",uid=%d,gid=%d", owner.UID, owner.GID)
	}
	err = syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOEXEC|syscall.MS_NOSUID|syscall.MS_NODEV, opts)
	if errors.Is(err, syscall.EPERM) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return false, nil
}

// chownRun gives the run's user the files on its tmpfs that its workload
// reads: the token and the secret files. The env file stays root's: the
// entrypoint reads it before it takes on the run's user.
func chownRun(runDir string, owner *runtime.User) error {
	return filepath.WalkDir(runDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == filepath.Join(runDir, envFile) {
			return nil
		}
		return os.Lchown(p, int(owner.UID), int(owner.GID))
	})
}

// removeTmpfs unmounts and removes a run dir. It is safe to call on a dir
// that is not mounted or does not exist.
func removeTmpfs(dir string) error {
	if err := syscall.Unmount(dir, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	return os.RemoveAll(dir)
}

// materialize writes a run's secrets to its tmpfs at runDir and returns
// how the run receives them. In an isolated runtime the run sees files at
// their mount paths; otherwise at their paths on the tmpfs.
func materialize(runDir string, isolated bool, secrets []*store.Secret, runEnv map[string]string) (*injection, error) {
	inj := &injection{registry: map[string][2]string{}}
	usedTargets := map[string]string{}
	// where returns the path the run sees for a file under files/.
	where := func(rel, target string) string {
		if isolated {
			return target
		}
		return filepath.Join(runDir, filesDir, rel)
	}
	write := func(rel string, data []byte) (string, error) {
		p := filepath.Join(runDir, filesDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, data, 0o400); err != nil {
			return "", err
		}
		return p, nil
	}
	mount := func(sec *store.Secret, source, target string) error {
		if other, ok := usedTargets[target]; ok {
			return fmt.Errorf("secrets %s and %s both mount at %s: give one of them another --mount-path", other, sec.Name, target)
		}
		usedTargets[target] = sec.Name
		inj.mounts = append(inj.mounts, runtime.Mount{Source: source, Target: target})
		return nil
	}
	setEnv := func(sec *store.Secret, key, value string, secret bool) {
		if _, ok := runEnv[key]; ok {
			inj.events = append(inj.events, fmt.Sprintf("env_variables sets %s, which overrides secret %s", key, sec.Name))
			return
		}
		if secret {
			inj.secretEnv = append(inj.secretEnv, key+"="+value)
		} else {
			inj.env = append(inj.env, key+"="+value)
		}
	}
	pathVar := func(name string) string { return api.EnvSecretPathPrefix + api.EnvKeyFromName(name) }

	for _, sec := range secrets {
		// Checked at create too; this also covers provider values and
		// secrets stored before that check.
		if spec, ok := api.LookupType(sec.Type); ok {
			for _, d := range spec.Data {
				if !d.Env {
					continue
				}
				if err := api.ValidateEnvValue(sec.Data[d.Name]); err != nil {
					return nil, fmt.Errorf("secret %s: %s %w", sec.Name, d.Name, err)
				}
			}
		}
		mountPath := sec.Fields[api.FieldMountPath]
		switch sec.Type {
		case api.TypeEnv:
			setEnv(sec, sec.Fields[api.FieldKey], string(sec.Data[api.FieldValue]), true)

		case api.TypeMounted, api.TypeSSH, api.TypeGitSSH, api.TypeGCP:
			def, data := "secret", sec.Data[api.FieldValue]
			switch sec.Type {
			case api.TypeSSH, api.TypeGitSSH:
				def = "key"
			case api.TypeGCP:
				def, data = "credentials.json", sec.Data["credentials"]
			}
			target := cmp.Or(mountPath, path.Join("/secrets", sec.Name, def))
			rel := path.Join(sec.Name, path.Base(target))
			src, err := write(rel, data)
			if err != nil {
				return nil, fmt.Errorf("write secret %s: %w", sec.Name, err)
			}
			if err := mount(sec, src, target); err != nil {
				return nil, err
			}
			p := where(rel, target)
			setEnv(sec, pathVar(sec.Name), p, false)
			switch sec.Type {
			case api.TypeGitSSH:
				setEnv(sec, "GIT_SSH_COMMAND", "ssh -o StrictHostKeyChecking=no -i "+p, false)
			case api.TypeGCP:
				setEnv(sec, "GOOGLE_APPLICATION_CREDENTIALS", p, false)
			}

		case api.TypeS3, api.TypeOCI:
			files := map[string][]byte{"config": sec.Data["config"], "credentials": sec.Data["credentials"]}
			if sec.Type == api.TypeOCI {
				files = map[string][]byte{"config": sec.Data["config"], "key.pem": sec.Data["key"]}
			}
			for name, data := range files {
				if _, err := write(path.Join(sec.Name, name), data); err != nil {
					return nil, fmt.Errorf("write secret %s: %w", sec.Name, err)
				}
			}
			target := cmp.Or(mountPath, path.Join("/secrets", sec.Name))
			if err := mount(sec, filepath.Join(runDir, filesDir, sec.Name), target); err != nil {
				return nil, err
			}
			dir := where(sec.Name, target)
			setEnv(sec, pathVar(sec.Name), dir, false)
			if sec.Type == api.TypeS3 {
				setEnv(sec, "AWS_CONFIG_FILE", path.Join(dir, "config"), false)
				setEnv(sec, "AWS_SHARED_CREDENTIALS_FILE", path.Join(dir, "credentials"), false)
				if p := sec.Fields["profile"]; p != "" {
					setEnv(sec, "AWS_PROFILE", p, false)
				}
			} else {
				setEnv(sec, "OCI_CONFIG_FILE", path.Join(dir, "config"), false)
				setEnv(sec, "OCI_CLI_CONFIG_FILE", path.Join(dir, "config"), false)
				setEnv(sec, "OCI_CLI_KEY_FILE", path.Join(dir, "key.pem"), false)
			}

		case api.TypeDatabricks:
			setEnv(sec, "DATABRICKS_HOST", sec.Fields["host"], false)
			setEnv(sec, "DATABRICKS_TOKEN", string(sec.Data["token"]), true)

		case api.TypeHF:
			setEnv(sec, "HF_TOKEN", string(sec.Data["token"]), true)

		case api.TypeDocker:
			inj.registry[sec.Fields["server"]] = [2]string{sec.Fields["username"], string(sec.Data["password"])}
		}
	}
	// Parents before children, so that a mount inside another lands on top.
	slices.SortFunc(inj.mounts, func(a, b runtime.Mount) int { return strings.Compare(a.Target, b.Target) })
	if err := os.WriteFile(filepath.Join(runDir, envFile), []byte(strings.Join(inj.secretEnv, "\x00")), 0o400); err != nil {
		return nil, fmt.Errorf("write secret environment: %w", err)
	}
	return inj, nil
}

// registryHost matches a docker secret's server against the host that
// containerd asks credentials for: "docker.io" also answers for
// registry-1.docker.io, and a server may be written with a scheme or path.
func registryHost(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "registry-1.docker.io"
	}
	return s
}
