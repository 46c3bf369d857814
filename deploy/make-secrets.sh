#!/bin/sh
# Make the secret files deploy/compose.yaml mounts: random values, written once.
#
#   sh deploy/make-secrets.sh            # into deploy/secrets/ (ignored by git)
#   sh deploy/make-secrets.sh DIR        # elsewhere
#
# A file that already exists is kept: a new keyring key would void every session token issued,
# and PostgreSQL keeps the password it was first started with in its volume.
#
# Compose mounts file secrets as bind mounts with the host's owner and mode, so the files are
# readable by all (the gateway runs as uid 10001, not as you) inside a directory only you can
# enter, which keeps the host's other users out.
set -eu

dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"

random_hex() {  # 32 random bytes as 64 hex digits: POSIX tools only, safe inside a URL
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

write() {  # write NAME from stdin unless it exists
    if [ -s "$dir/$1" ]; then
        echo "kept    $dir/$1"
        cat >/dev/null
        return
    fi
    (umask 022 && cat >"$dir/$1.tmp")
    mv "$dir/$1.tmp" "$dir/$1"
    echo "created $dir/$1"
}

random_hex | write fedgate_keyring_k1
random_hex | write postgres_password
# The URL carries the password PostgreSQL was given; user and database match compose.yaml's.
printf 'postgresql://fedgate:%s@postgres:5432/fedgate' "$(cat "$dir/postgres_password")" |
    write fedgate_database_url
