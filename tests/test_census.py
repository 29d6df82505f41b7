"""Object census: detector counts, informativeness, correlations with bootstrap intervals."""

import numpy as np
import pytest
from scipy import stats as sps

from unitscope.concepts import Concept, ConceptTable
from unitscope.experiments.census import correlation_with_ci, informative_scenes, object_census
from unitscope.experiments.dissect import DissectionResult, LayerDissection


def hand_made_result(iou_rows, network="net"):
    # concepts: 1 bed, 2 lamp, 3 car (objects); 4 bedroom, 5 street (scenes)
    concepts = ConceptTable([Concept(1, "bed", "object"), Concept(2, "lamp", "object"),
                             Concept(3, "car", "object"), Concept(4, "bedroom", "scene"),
                             Concept(5, "street", "scene")])
    iou = np.array(iou_rows, dtype=float)
    u = iou.shape[0]
    layer = LayerDissection("conv5", thresholds=np.ones(u), iou=iou,
                            top_indices=np.zeros((u, 1), dtype=np.int64), top_values=np.ones((u, 1)),
                            top_overlap=np.ones((u, 1, 5), dtype=bool))
    # 10 images: 5 bedrooms (all with bed, 4 with lamp), 5 streets (all with car, 1 with lamp)
    images = np.array([5, 5, 5, 5, 5])
    cooc = np.zeros((5, 5), dtype=np.int64)
    cooc[0, 3] = cooc[3, 0] = 5   # bed & bedroom
    cooc[1, 3] = cooc[3, 1] = 4   # lamp & bedroom
    cooc[1, 4] = cooc[4, 1] = 1   # lamp & street
    cooc[2, 4] = cooc[4, 2] = 5   # car & street
    for i in range(5):
        cooc[i, i] = images[i]
    return DissectionResult(network=network, concepts=concepts, layers={"conv5": layer},
                            image_ids=[f"i{k}" for k in range(10)], concept_images=images,
                            cooccurrence=cooc, config={"iou_threshold": 0.04})


def test_informative_scenes_from_cooccurrence():
    counts, table = informative_scenes(hand_made_result([[0.1, 0, 0, 0, 0]]))
    assert counts.to_dict() == {"bed": 1.0, "lamp": 0.0, "car": 1.0}
    bedroom = table[table.scene == "bedroom"].set_index("object")
    # P(bed|bedroom)=1, P(bed)=0.5 -> score = log 2 ; P(lamp|bedroom)=0.8, P(lamp)=0.5 -> 0.8 log 1.6
    assert bedroom.loc["bed", "score"] == pytest.approx(np.log(2))
    assert bedroom.loc["lamp", "score"] == pytest.approx(0.8 * np.log(1.6))
    assert bedroom.loc["bed", "rank"] == 1


def test_detector_counts_threshold_sweep_and_null():
    result = hand_made_result([[0.20, 0, 0, 0, 0], [0.05, 0, 0, 0, 0], [0, 0.03, 0, 0, 0], [0, 0, 0, 0.5, 0]])
    null = hand_made_result([[0.01, 0, 0, 0, 0]] * 4, network="net-random")
    census = object_census(result, null=null, n_boot=200)
    objects = census.objects[census.objects.network == "net"].set_index("object")
    assert objects["detectors"].to_dict() == {"bed": 2, "lamp": 0, "car": 0}
    layers = census.layers.set_index("network")
    assert layers.loc["net", "detectors"] == 3 and layers.loc["net", "unique_objects"] == 1
    assert layers.loc["net-random", "detectors"] == 0
    sweep = census.sweep[census.sweep.network == "net"].set_index("iou_threshold")
    assert sweep.loc[0.02, "detectors"] == 4 and sweep.loc[0.06, "detectors"] == 2
    assert sweep.loc[0.10, "unique_objects"] == 1


def test_correlation_and_bootstrap_interval():
    x = np.arange(20, dtype=float)
    y = 2 * x + np.random.default_rng(0).normal(0, 3, size=20)
    out = correlation_with_ci(x, y, n_boot=500)
    assert out["pearson"] == pytest.approx(sps.pearsonr(x, y)[0])
    assert out["spearman"] == pytest.approx(sps.spearmanr(x, y)[0])
    assert out["pearson_lo"] < out["pearson"] < out["pearson_hi"] <= 1.0
    assert out["n"] == 20
    flat = correlation_with_ci([1, 1, 1, 1], [1, 2, 3, 4])
    assert np.isnan(flat["pearson"]) and np.isnan(flat["spearman_lo"])


def test_census_round_trip(tmp_path):
    census = object_census(hand_made_result([[0.2, 0, 0, 0, 0]]), n_boot=50)
    census.save(tmp_path)
    from unitscope.results.census import CensusResult

    back = CensusResult.load(tmp_path)
    assert back.objects.equals(census.objects)
    assert back.config["iou_threshold"] == 0.04
