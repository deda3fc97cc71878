/**
 * The script the build job runs (one job per build, as Flynn's slugbuilder does): detect, compile
 * and release with the buildpacks given as arguments, writing the step it is in to
 * `$FLYNN_META_DIR/step` (so the builder can say where a failure happened) and the last release's
 * YAML to `$FLYNN_META_DIR/release.yml`. POSIX sh, so it runs under busybox sh in the image and
 * under the host's sh with the process executor.
 *
 * Env: BUILD_DIR, CACHE_DIR, ENV_DIR, FLYNN_META_DIR, FLYNN_DETECT (1: first pack whose detect
 * passes; 0: all of them in order). Args: buildpack directories.
 *
 * As on Heroku, a buildpack whose compile leaves an `export` file in its own directory (next to
 * `bin/`) passes variables to the buildpacks after it: the file is sourced before the next compile.
 */
export const BUILD_DRIVER_SCRIPT = `#!/bin/sh
exec 2>&1
meta="$FLYNN_META_DIR"
step() { printf '%s\\n' "$1" > "$meta/step"; }
nameof() { basename "$1" | sed 's/^[0-9]*-//'; }

if [ "$#" -eq 0 ]; then step detect; echo " !     No buildpacks to try"; exit 1; fi

if [ "$FLYNN_DETECT" = 1 ]; then
  step detect
  tried=""
  for bp in "$@"; do
    tried="$tried $(nameof "$bp")"
    if [ -x "$bp/bin/detect" ] && framework=$("$bp/bin/detect" "$BUILD_DIR" 2>/dev/null); then
      echo "-----> \${framework:-$(nameof "$bp")} app detected"
      set -- "$bp"
      detected=1
      break
    fi
  done
  if [ -z "$detected" ]; then
    echo " !     No buildpack can build this app: none of [$tried ] detected it"
    echo " !     Add a Procfile, or pick a buildpack with BUILDPACK_URL or a .buildpacks file"
    exit 1
  fi
else
  for bp in "$@"; do
    framework=$("$bp/bin/detect" "$BUILD_DIR" 2>/dev/null) || framework=""
    echo "-----> Using buildpack $(nameof "$bp")\${framework:+ ($framework)}"
  done
fi

for bp in "$@"; do nameof "$bp"; done > "$meta/buildpacks"

for bp in "$@"; do
  name=$(nameof "$bp")
  step "compile $name"
  if [ ! -x "$bp/bin/compile" ]; then echo " !     Buildpack $name has no executable bin/compile"; exit 1; fi
  "$bp/bin/compile" "$BUILD_DIR" "$CACHE_DIR" "$ENV_DIR"
  status=$?
  if [ "$status" -ne 0 ]; then
    echo " !     Build failed: buildpack $name bin/compile exited with status $status"
    exit "$status"
  fi
  if [ -f "$bp/export" ]; then . "$bp/export"; fi
  last="$bp"
done

name=$(nameof "$last")
step "release $name"
if [ -x "$last/bin/release" ]; then
  "$last/bin/release" "$BUILD_DIR" > "$meta/release.yml"
  status=$?
  if [ "$status" -ne 0 ]; then
    echo " !     Build failed: buildpack $name bin/release exited with status $status"
    exit "$status"
  fi
fi
step done
`;
