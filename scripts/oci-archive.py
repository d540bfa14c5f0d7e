#!/usr/bin/env python3
"""Writes an OCI image archive (an OCI image layout in a tar, what
`skopeo copy oci-archive:` and `docker load` read) from a `docker save`
archive: for the saved image's own platform, or for another one given that
platform's binary. The image is FROM scratch: its files but the binary are
the same on every platform, so the saved image with the other binary in its
place, and its config naming the other architecture, is that platform's
image.

    scripts/oci-archive.py SAVED.tar OUT.tar REF [ARCH BINARY PATH]

REF is the image's ref name in the layout (its tag); PATH is where the
binary is in the image (docker-stats-exporter).
"""

import hashlib
import io
import json
import sys
import tarfile


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def with_binary(layer, path, binary):
    """The layer with the file at `path` holding `binary` instead."""
    out = io.BytesIO()
    found = False
    with tarfile.open(fileobj=io.BytesIO(layer)) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            if member.isfile() and member.name.lstrip("./") == path:
                member.size = len(binary)
                dst.addfile(member, io.BytesIO(binary))
                found = True
            elif member.isfile():
                dst.addfile(member, src.extractfile(member))
            else:
                dst.addfile(member)
    return out.getvalue(), found


def add(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def main(argv):
    if len(argv) not in (4, 7):
        sys.exit(__doc__)
    saved, out, ref = argv[1:4]
    with tarfile.open(saved) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        config = json.load(t.extractfile(manifest["Config"]))
        layers = [t.extractfile(name).read() for name in manifest["Layers"]]
    if len(argv) == 7:
        arch, binary_path, path = argv[4:7]
        with open(binary_path, "rb") as f:
            binary = f.read()
        swapped = [with_binary(layer, path, binary) for layer in layers]
        if not any(found for _, found in swapped):
            sys.exit(f"{saved}: no file {path} in any layer")
        layers = [layer for layer, _ in swapped]
        config["architecture"] = arch
        config.pop("variant", None)
        if arch == "arm64":
            config["variant"] = "v8"
        config["rootfs"]["diff_ids"] = ["sha256:" + sha256(layer) for layer in layers]

    blobs = {}

    def blob(data, media_type):
        digest = sha256(data)
        blobs[digest] = data
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    config_json = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    image_manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(config_json, "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(layer, "application/vnd.oci.image.layer.v1.tar") for layer in layers],
    }
    manifest_json = json.dumps(image_manifest, separators=(",", ":")).encode()
    platform = {"architecture": config["architecture"], "os": config["os"]}
    if "variant" in config:
        platform["variant"] = config["variant"]
    entry = blob(manifest_json, image_manifest["mediaType"])
    entry["platform"] = platform
    entry["annotations"] = {"org.opencontainers.image.ref.name": ref}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    }
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        add(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(archive, "index.json", json.dumps(index, separators=(",", ":")).encode())
        for digest, data in sorted(blobs.items()):
            add(archive, f"blobs/sha256/{digest}", data)


if __name__ == "__main__":
    main(sys.argv)
