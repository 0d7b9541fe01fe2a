package api

// mountPathInput is the --mount-path flag of every type that runs receive
// as files.
var mountPathInput = InputSpec{Flag: "mount-path", Target: FieldMountPath,
	Usage: "where the file appears in runs (`PATH`, absolute)"}

// builtinTypes are the secret types hush ships, in DESIGN's order.
var builtinTypes = []*TypeSpec{
	{
		Type: TypeEnv, Label: "environment",
		Fields: []FieldSpec{{Name: FieldKey, Required: true, Check: ValidateEnvKey}},
		Data:   []DataSpec{{Name: FieldValue}},
		Create: CreateSpec{Usage: "an environment variable", ArgsUsage: "KEY=VALUE",
			Arg: ArgKeyValue, ArgField: FieldKey, ArgData: FieldValue},
		Inject: InjectSpec{Env: []EnvSpec{{NameField: FieldKey, From: EnvData, Ref: FieldValue}}},
	},
	{
		Type: TypeMounted, Label: "mounted",
		Fields: []FieldSpec{{Name: FieldMountPath, Check: ValidateMountPath}},
		Data:   []DataSpec{{Name: FieldValue}},
		Create: CreateSpec{Usage: "a file mounted into runs", ArgsUsage: "FILE", Arg: ArgFile, ArgData: FieldValue,
			Inputs: []InputSpec{mountPathInput}},
		Inject: InjectSpec{Files: []FileSpec{{Name: "secret", Data: FieldValue}}},
	},
	{
		Type: TypeSSH, Label: "ssh",
		Fields: []FieldSpec{{Name: FieldMountPath, Check: ValidateMountPath}},
		Data:   []DataSpec{{Name: FieldValue, Check: checkPrivateKey}},
		Create: CreateSpec{Usage: "an SSH private key mounted into runs", ArgsUsage: "KEY_FILE", Arg: ArgFile, ArgData: FieldValue,
			Inputs: []InputSpec{mountPathInput}},
		Inject: InjectSpec{Files: []FileSpec{{Name: "key", Data: FieldValue}}},
	},
	{
		Type: TypeGitSSH, Label: "git-ssh", UniquePerOwner: true,
		Fields: []FieldSpec{{Name: FieldMountPath, Check: ValidateMountPath}},
		Data: []DataSpec{
			{Name: FieldValue, Check: checkPrivateKey},
			{Name: FieldKnownHosts, Optional: true, Check: checkKnownHosts, Absent: "each run accepts an SSH host's key " +
				"the first time it connects to it, and refuses it if it changes within the run; nothing is kept from one run to the next (StrictHostKeyChecking=accept-new); " +
				"to check hosts from the first connection, give a known_hosts file whose keys you have verified, such as one that " +
				"`ssh-keyscan github.com` writes"},
		},
		Create: CreateSpec{Usage: "the SSH private key git uses in runs (one per user)", ArgsUsage: "KEY_FILE", Arg: ArgFile, ArgData: FieldValue,
			Inputs: []InputSpec{
				mountPathInput,
				{Flag: "known-hosts", Target: FieldKnownHosts, File: true, Usage: "known_hosts `FILE` holding the host keys " +
					"git may connect to (without it, each run accepts a host's key the first time it connects)"},
			}},
		// The key is mounted as one file, with known_hosts beside it. A
		// secret without known_hosts, such as one stored before secrets
		// had it, trusts a host's key on first use: never
		// StrictHostKeyChecking=no, which would take any key each time.
		Inject: InjectSpec{
			Files: []FileSpec{{Name: "key", Data: FieldValue}, {Name: FieldKnownHosts, Data: FieldKnownHosts}},
			Env: []EnvSpec{
				{Name: "GIT_SSH_COMMAND", From: EnvFormat, When: FieldKnownHosts,
					Ref: "ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} -i {key}"},
				{Name: "GIT_SSH_COMMAND", From: EnvPath, Unless: FieldKnownHosts,
					Prefix: "ssh -o StrictHostKeyChecking=accept-new -i "},
			},
		},
	},
	{
		Type: TypeDocker, Label: "docker",
		Fields: []FieldSpec{
			{Name: "username", Required: true},
			{Name: "server", Required: true, Check: checkRegistry},
			{Name: "email"},
		},
		Data: []DataSpec{{Name: "password"}},
		Create: CreateSpec{Usage: "credentials for a container registry", Inputs: []InputSpec{
			{Flag: "username", Target: "username", Required: true, Usage: "registry user `NAME`"},
			{Flag: "password", Target: "password", Required: true, Usage: "registry `PASSWORD` (- reads stdin; prompted for on a terminal)"},
			{Flag: "server", Target: "server", Required: true, Usage: "registry `HOST`, such as ghcr.io"},
			{Flag: "email", Target: "email", Usage: "registry account `EMAIL`"},
		}},
		Inject: InjectSpec{Registry: &RegistrySpec{Server: "server", Username: "username", Password: "password"}},
	},
	{
		Type: TypeS3, Label: "s3",
		Fields: []FieldSpec{
			{Name: "profile", Check: checkProfile},
			{Name: FieldMountPath, Check: ValidateMountPath},
		},
		Data: []DataSpec{{Name: "config"}, {Name: "credentials"}},
		Create: CreateSpec{Usage: "AWS credentials for S3", Inputs: []InputSpec{
			{Flag: "config-file", Target: "config", File: true, Required: true, Usage: "AWS config `FILE`"},
			{Flag: "credentials-file", Target: "credentials", File: true, Required: true, Usage: "AWS credentials `FILE`"},
			{Flag: "profile", Target: "profile", Usage: "AWS `PROFILE` to use"},
			mountPathInput,
		}},
		Inject: InjectSpec{
			Dir:   true,
			Files: []FileSpec{{Name: "config", Data: "config"}, {Name: "credentials", Data: "credentials"}},
			Env: []EnvSpec{
				{Name: "AWS_CONFIG_FILE", From: EnvFilePath, Ref: "config"},
				{Name: "AWS_SHARED_CREDENTIALS_FILE", From: EnvFilePath, Ref: "credentials"},
				{Name: "AWS_PROFILE", From: EnvField, Ref: "profile"},
			},
		},
	},
	{
		Type: TypeGCP, Label: "gcp",
		Fields: []FieldSpec{{Name: FieldMountPath, Check: ValidateMountPath}},
		Data:   []DataSpec{{Name: "credentials", Check: checkJSON}},
		Create: CreateSpec{Usage: "a GCP service account key", Inputs: []InputSpec{
			{Flag: "credentials-file", Target: "credentials", File: true, Required: true, Usage: "service account key `FILE` (JSON)"},
			mountPathInput,
		}},
		Inject: InjectSpec{
			Files: []FileSpec{{Name: "credentials.json", Data: "credentials"}},
			Env:   []EnvSpec{{Name: "GOOGLE_APPLICATION_CREDENTIALS", From: EnvPath}},
		},
	},
	{
		Type: TypeOCI, Label: "oci",
		Fields: []FieldSpec{{Name: FieldMountPath, Check: ValidateMountPath}},
		Data:   []DataSpec{{Name: "config"}, {Name: "key"}},
		Create: CreateSpec{Usage: "Oracle Cloud credentials", Inputs: []InputSpec{
			{Flag: "config-file", Target: "config", File: true, Required: true, Usage: "OCI config `FILE`"},
			{Flag: "key-file", Target: "key", File: true, Required: true, Usage: "OCI API key `FILE`"},
			mountPathInput,
		}},
		Inject: InjectSpec{
			Dir:   true,
			Files: []FileSpec{{Name: "config", Data: "config"}, {Name: "key.pem", Data: "key"}},
			Env: []EnvSpec{
				{Name: "OCI_CONFIG_FILE", From: EnvFilePath, Ref: "config"},
				{Name: "OCI_CLI_CONFIG_FILE", From: EnvFilePath, Ref: "config"},
				{Name: "OCI_CLI_KEY_FILE", From: EnvFilePath, Ref: "key.pem"},
			},
		},
	},
	{
		Type: TypeDatabricks, Label: "databricks",
		Fields: []FieldSpec{{Name: "host", Required: true, Check: checkHTTPURL}},
		Data:   []DataSpec{{Name: "token"}},
		Create: CreateSpec{Usage: "a Databricks workspace and token", Inputs: []InputSpec{
			{Flag: "host", Target: "host", Required: true, Usage: "workspace `URL`, such as https://example.cloud.databricks.com"},
			{Flag: "token", Target: "token", Required: true, Usage: "access `TOKEN` (- reads stdin; prompted for on a terminal)"},
		}},
		Inject: InjectSpec{Env: []EnvSpec{
			{Name: "DATABRICKS_HOST", From: EnvField, Ref: "host"},
			{Name: "DATABRICKS_TOKEN", From: EnvData, Ref: "token"},
		}},
	},
	{
		Type: TypeHF, Label: "hf",
		Data: []DataSpec{{Name: "token", Check: checkHFToken}},
		Create: CreateSpec{Usage: "a Hugging Face token", Inputs: []InputSpec{
			{Flag: "token", Target: "token", Required: true, Usage: "Hugging Face `TOKEN`, starting hf_ (- reads stdin; prompted for on a terminal)"},
		}},
		Inject: InjectSpec{Env: []EnvSpec{{Name: "HF_TOKEN", From: EnvData, Ref: "token"}}},
	},
}
