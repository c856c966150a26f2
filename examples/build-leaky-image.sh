#!/usr/bin/env bash
# Builds examples/out/leaky-app: a small, real OCI image (busybox-static, built with umoci, no
# Docker needed) with the mistakes rsafe exists to catch, layer by layer:
#   layer 1  busybox rootfs with users root and app
#   layer 2  "COPY . /app": the app, plus a .env with cloud credentials and a deploy key
#   layer 3  "RUN rm /app/.env /root/.ssh/id_ed25519": deleted — but still in layer 2 of the image
# The credentials are synthetic (random, valid-looking, belong to nobody).
# Also writes examples/out/leaky-app.tar (docker save format, via skopeo).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-$HERE/out}"
export SOURCE_DATE_EPOCH=1700000000
CREATED="2023-11-14T22:13:20Z"
L="$OUT/leaky-app"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$L" "$OUT/leaky-app.tar"
mkdir -p "$OUT"

umoci init --layout "$L"
umoci new --image "$L:wip"

# layer 1: busybox rootfs
umoci unpack --image "$L:wip" "$WORK/b"
R="$WORK/b/rootfs"
mkdir -p "$R"/{bin,etc,tmp,root,home/app,app}
cp /bin/busybox "$R/bin/busybox"
for a in sh ls cat id env ps echo rm mkdir httpd; do ln -sf busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' > "$R/etc/group"
chmod 1777 "$R/tmp"; chmod 700 "$R/root"
umoci repack --image "$L:wip" --history.created "$CREATED" \
  --history.created_by "ADD busybox-rootfs.tar /" "$WORK/b"
rm -rf "$WORK/b"

# layer 2: the app and, by mistake, its secrets
umoci unpack --image "$L:wip" "$WORK/b"
R="$WORK/b/rootfs"
cat > "$R/app/server.sh" <<'APP'
#!/bin/sh
exec httpd -f -p 8080 -h /app/www
APP
chmod 755 "$R/app/server.sh"
mkdir -p "$R/app/www" "$R/root/.ssh"
echo '<h1>hello</h1>' > "$R/app/www/index.html"
cat > "$R/app/.env" <<'ENV'
APP_ENV=production
AWS_ACCESS_KEY_ID=AKIA4RSAFEQ7XKZP2M3J
AWS_SECRET_ACCESS_KEY=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
ENV
cat > "$R/root/.ssh/id_ed25519" <<'KEY'
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBq7fS1xW9r2tMZk4YhJp0cVn3LbQeA8sGd6uRi5oTyXwAAAJgK1rs8Cta7
PAAAAAtzc2gtZWQyNTUxOQAAACBq7fS1xW9r2tMZk4YhJp0cVn3LbQeA8sGd6uRi5oTyXw
AAAEBd9kP2wQx7Rz1vN4mY8tL3sJ6hG0fB5cE2aD9uK1oI7mrt9LXFb2va0xmThiEmnRxW
fctG5B4DywZ3q5GLmhPJfAAAAEHJzYWZlQGV4YW1wbGUuaW8BAgMEBQ==
-----END OPENSSH PRIVATE KEY-----
KEY
chmod 600 "$R/root/.ssh/id_ed25519" "$R/app/.env"
umoci repack --image "$L:wip" --history.created "$CREATED" \
  --history.created_by "COPY . /app # buildkit" "$WORK/b"
rm -rf "$WORK/b"

# layer 3: "cleaning up" — the files disappear from the final filesystem, not from the image
umoci unpack --image "$L:wip" "$WORK/b"
rm -f "$WORK/b/rootfs/app/.env" "$WORK/b/rootfs/root/.ssh/id_ed25519"
umoci repack --image "$L:wip" --history.created "$CREATED" \
  --history.created_by "RUN rm /app/.env /root/.ssh/id_ed25519" "$WORK/b"

umoci config --image "$L:wip" --tag 1.0 --created "$CREATED" --history.created "$CREATED" \
  --author rsafe-example \
  --config.cmd /app/server.sh --config.workingdir /app \
  --config.env PATH=/bin --config.exposedports 8080/tcp \
  --config.label org.opencontainers.image.title=leaky-app
umoci rm --image "$L:wip"
umoci gc --layout "$L"
chmod -R a+rX "$L"
skopeo copy -q "oci:$L:1.0" "docker-archive:$OUT/leaky-app.tar:leaky-app:1.0"
chmod a+r "$OUT/leaky-app.tar"
echo "built $L (OCI layout, tag 1.0) and $OUT/leaky-app.tar (docker save format)"
