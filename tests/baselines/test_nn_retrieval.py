"""The nearest-neighbour retrieval floor on a tiny synth-cxr: a training study finds itself,
predictions are cleaned training reports, the ResNet option needs a weights file and records it."""
from __future__ import annotations

import pytest
import torch

from baselines.nn_retrieval import NearestNeighbourReport
from uarbench.data.datasets import load_dataset
from uarbench.data.synth import SynthConfig, generate_synth
from uarbench.errors import UarbenchError
from uarbench.models import MODELS
from uarbench.models.resnet import ResNet
from uarbench.provenance import file_sha256


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = generate_synth(tmp_path_factory.mktemp("synth") / "s",
                          SynthConfig(n_train=10, n_val=2, n_test=4, size=64, seed=5), progress=False)
    return load_dataset("synth-cxr", root)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(ResNet("resnet18").state_dict(), path)
    return path


def test_registered_and_constructible_without_arguments():
    assert MODELS.get("nn_retrieval") is NearestNeighbourReport
    assert NearestNeighbourReport().describe()["features"] == "pixels"


def test_a_training_study_retrieves_its_own_report(synth):
    floor = NearestNeighbourReport().fit(synth)
    train = synth.split("train")
    found = floor.nearest(train)
    assert all(found[s.id][0] == s.id for s in train)
    assert all(found[s.id][1] == pytest.approx(1.0, abs=1e-5) for s in train)
    preds = floor.predict(train)
    assert preds == {s.id: synth.clean(s.report) for s in train}


def test_predictions_are_cleaned_training_reports_of_the_most_similar_study(synth):
    floor = NearestNeighbourReport().fit(synth)
    test = synth.split("test")
    preds = floor.predict(test)
    assert list(preds) == [s.id for s in test]
    train_reports = {synth.clean(s.report) for s in synth.split("train")}
    assert set(preds.values()) <= train_reports
    # the retrieved study is the arg-max of the cosine over the training bank, computed here apart
    query, bank = floor._embed(list(test)), floor._embed(list(synth.split("train")))
    best = (query @ bank.T).argmax(dim=1).tolist()
    found = floor.nearest(test)
    assert [found[s.id][0] for s in test] == [floor.train_ids[j] for j in best]
    assert floor.predict([]) == {}


def test_pixel_features_are_standardised_with_training_statistics(synth):
    floor = NearestNeighbourReport().fit(synth)
    assert floor.mean.shape == (2 * 32 * 32,)
    raw = floor._raw(list(synth.split("train")))
    z = (raw - floor.mean) / floor.sd
    torch.testing.assert_close(z.mean(dim=0), torch.zeros(raw.shape[1]), atol=1e-5, rtol=0)
    d = floor.describe()
    assert d["size"] == 32 and d["weights"] is None and d["n_train"] == 10


def test_resnet_features_without_weights_are_refused():
    with pytest.raises(UarbenchError, match="weights file"):
        NearestNeighbourReport("resnet")
    with pytest.raises(UarbenchError, match="unknown nn_retrieval features"):
        NearestNeighbourReport("clip")


def test_resnet_features_with_a_weights_file_run_and_are_recorded(synth, resnet18_file, tmp_path):
    floor = NearestNeighbourReport("resnet", weights=resnet18_file, arch="resnet18", size=64,
                                   batch_size=4).fit(synth)
    train = synth.split("train")
    assert floor.bank.shape == (10, 2 * 512)
    found = floor.nearest(train)
    assert all(found[s.id][0] == s.id for s in train)
    assert set(floor.predict(synth.split("test")).values()) <= {synth.clean(s.report) for s in train}
    d = floor.describe()
    assert d["features"] == "resnet" and d["arch"] == "resnet18" and d["size"] == 64
    assert d["weights_sha256"] == file_sha256(resnet18_file) and d["weights"] == str(resnet18_file)
    with pytest.raises(UarbenchError, match="not a resnet34 state dict"):
        NearestNeighbourReport("resnet", weights=resnet18_file, arch="resnet34")
    with pytest.raises(UarbenchError, match="not found"):
        NearestNeighbourReport("resnet", weights=tmp_path / "missing.pt", arch="resnet18")


def test_predict_before_fit_fails():
    with pytest.raises(RuntimeError, match="fit"):
        NearestNeighbourReport().predict([])
