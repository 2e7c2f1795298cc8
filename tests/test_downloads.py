"""The real download paths, over HTTP on the loopback interface: MNIST and CIFAR-10 through torchvision, the
Inception weights through torch-fidelity. A server in this process plays the remote host, whole or cut off halfway;
the network guard lets loopback through and nothing else."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from torchvision import datasets

from dcgan_utils.engine.data import DatasetNotFoundError, load_dataset
from dcgan_utils.evaluation import inception


class Host:
    """An HTTP server on 127.0.0.1 serving {name: bytes}; names in `cut` get half their body, then a closed socket."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests = files, set(), []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                name = self.path.rsplit("/", 1)[-1]
                host.requests.append(name)
                body = host.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if name in host.cut else body)
                if name in host.cut:
                    self.close_connection = True

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host():
    servers = []

    def start(files):
        servers.append(Host(files))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def test_mnist_downloads_from_its_mirror_and_a_cut_off_download_fails_clearly_then_resumes(host, mnist_root, tmp_path,
                                                                                         monkeypatch):
    raw = mnist_root / "MNIST" / "raw"
    remote = host({name: (raw / name).read_bytes() for name, _ in datasets.MNIST.resources})
    monkeypatch.setattr(datasets.MNIST, "mirrors", [remote.url])
    remote.cut = {"t10k-labels-idx1-ubyte.gz"}  # the last file of the four breaks off halfway
    with pytest.raises(DatasetNotFoundError, match="mnist") as caught:
        load_dataset("mnist", tmp_path, train=False)
    assert "Traceback" not in str(caught.value) and str(tmp_path) in str(caught.value)
    kept = sorted(p.name for p in (tmp_path / "MNIST" / "raw").glob("*-ubyte"))
    assert "train-images-idx3-ubyte" in kept, "the files that arrived whole were lost"

    remote.cut = set()
    before = len(remote.requests)
    test = load_dataset("mnist", tmp_path, train=False)  # the same call again, the host whole now
    reference = load_dataset("mnist", mnist_root, train=False)
    assert torch.equal(test.images, reference.images) and torch.equal(test.labels, reference.labels)
    assert "train-images-idx3-ubyte.gz" not in remote.requests[before:], "an intact file was downloaded again"


def _cifar_tarball() -> tuple[bytes, dict]:
    """A tiny CIFAR-10 archive in torchvision's layout (pickled batches of 3072-byte rows) and its batches' md5s."""
    rng = np.random.default_rng(0)
    members, md5s = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        members[name] = pickle.dumps({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                                      "labels": rng.integers(0, 10, 4).tolist()})
        md5s[name] = hashlib.md5(members[name]).hexdigest()
    members["batches.meta"] = pickle.dumps({"label_names": [f"class{i}" for i in range(10)]})
    md5s["batches.meta"] = hashlib.md5(members["batches.meta"]).hexdigest()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue(), md5s


def test_cifar10_downloads_its_archive_and_a_cut_off_archive_is_refused_with_its_md5(host, tmp_path, monkeypatch):
    archive, md5s = _cifar_tarball()
    remote = host({datasets.CIFAR10.filename: archive})
    monkeypatch.setattr(datasets.CIFAR10, "url", remote.url + datasets.CIFAR10.filename)
    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[f"data_batch_{i}", md5s[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5s["test_batch"]]])
    monkeypatch.setitem(datasets.CIFAR10.meta, "md5", md5s["batches.meta"])

    remote.cut = {datasets.CIFAR10.filename}
    with pytest.raises(DatasetNotFoundError, match="cifar10"):
        load_dataset("cifar10", tmp_path / "cut")
    remote.cut = set()
    train = load_dataset("cifar10", tmp_path / "whole")
    assert train.images.shape == (20, 3, 32, 32) and train.classes[3] == "class3"


def test_inception_weights_download_through_torch_fidelity_and_a_cut_off_one_says_what_to_do(host, tmp_path,
                                                                                            monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as patch:  # the network itself, with random weights: what the host serves
        patch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        weights = io.BytesIO()
        torch.save(fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict(), weights)
    remote = host({inception.INCEPTION_FILE: weights.getvalue()})
    monkeypatch.setattr(fe, "URL_INCEPTION_V3", remote.url + inception.INCEPTION_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("DCGAN_INCEPTION_WEIGHTS", raising=False)
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    served = hashlib.sha256(weights.getvalue()).hexdigest()[:8]  # the host's file stands in for the published one
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / inception.INCEPTION_FILE

    remote.cut = {inception.INCEPTION_FILE}
    with pytest.raises(inception.InceptionUnavailable, match="could not be downloaded.*weights_path="):
        inception.inception_scores(images, images, weights_sha256=served)
    assert not cached.exists(), "a cut-off download was kept in the cache"
    with pytest.raises(inception.InceptionUnavailable, match="could not be downloaded"):  # whole, but not the right file
        remote.cut = set()
        inception.inception_scores(images, images, weights_sha256="0123abcd")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(weights.getvalue()[:1000])  # as an older cut-off download would have left it
    scores = inception.inception_scores(images, images, weights_sha256=served)  # replaced, downloaded whole, then used
    assert remote.requests.count(inception.INCEPTION_FILE) == 3 and abs(scores["fid"]) < 1e-2
    assert hashlib.sha256(cached.read_bytes()).hexdigest().startswith(served)
