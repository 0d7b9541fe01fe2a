# The secrets `hush apply -f secrets.hcl` makes every cluster hold; secrets.yaml
# declares the same set in YAML.
#
# Each block is secret "TYPE" "NAME" { ... }, and its fields are the flags of
# `hush create secret TYPE` in snake_case. Keep values out of this file: give a
# sensitive value as env("VAR") or file("path"), so the file can be committed.
# A literal string works too, but hush warns about it. Paths are relative to
# this file.

# An environment variable in runs. Its key defaults to the name upper-cased,
# "-" as "_": SECRET_STUFF.
secret "env" "secret-stuff" {
  value = env("SECRET_STUFF")
}

# The agent stores only the reference and asks the vault plugin for the value
# each time a run starts, so the value never passes through this machine.
secret "env" "db-password" {
  key  = "DB_PASSWORD"
  from = "vault:secret/data/db#password"
}

# A file in runs, at mount_path.
secret "mounted" "app-config" {
  value      = file("secrets/app-config.json")
  mount_path = "/etc/app/config.json"
}

# s3, gcp and oci take their values as files, like their create flags
# (--credentials-file here): credentials_file = "path" is the same as
# credentials = file("path").
secret "gcp" "gcp-key" {
  credentials_file = "secrets/gcp-key.json"
}

# HF_TOKEN in runs; the token must start with hf_.
secret "hf" "hf-token" {
  token = env("HF_TOKEN")
}

secret "databricks" "databricks" {
  host  = "https://example.cloud.databricks.com"
  token = env("DATABRICKS_TOKEN")
}
