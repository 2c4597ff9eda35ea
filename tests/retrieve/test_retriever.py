from __future__ import annotations

from rag.retrieve.fusion import zscore_fusion
from rag.types import Filters


def test_seed_index_finds_harmoni_a_for_pfs_ivonescimab(seed_index) -> None:
    response = seed_index.search("pfs ivonescimab", k=3)
    top = response.hits[0]
    assert "HARMONi-A" in top.text and "7.1 months" in top.text
    assert top.why.lexical_rank == 1 and top.why.dense_rank is not None
    assert "progression-free survival" in (response.expanded_query or "")
    assert top.provenance.char_end - top.provenance.char_start == len(top.text)


def test_each_mode_and_filters(seed_index) -> None:
    for mode in ("dense", "lexical", "hybrid"):
        hits = seed_index.search("tumor microenvironment radiotherapy", k=3, mode=mode).hits
        assert hits, mode
    review = "002_b22e3dff1adcf684"
    only = seed_index.search("ivonescimab", k=5, filters=Filters(doc_ids=(review,))).hits
    assert only and {h.provenance.doc_id for h in only} == {review}
    assert seed_index.search("ivonescimab", filters=Filters(year_min=2030)).hits == []
    news = seed_index.search("vaccine", filters=Filters(kinds=("news",))).hits
    assert news and all(h.provenance.doc_id.startswith("000_") for h in news)


def test_diversity_avoids_near_duplicates(seed_index) -> None:
    hits = seed_index.search("resistance to immunotherapy in NSCLC", k=5).hits
    texts = [h.text for h in hits]
    assert len(set(texts)) == len(texts)


def test_search_survives_a_delete_committed_mid_query(assistant, seeds) -> None:
    """The load test's search 500s (KeyError): a writer deleted chunks between the read of their
    text and the read of their vectors for MMR. Replay that interleaving with a real delete."""
    assistant.add([seeds])
    docs = {d.doc_id for d in assistant.documents()}
    news = next(d for d in docs if d.startswith("000_"))
    index = assistant.index
    read_chunks = index.chunks
    deleted: list[str] = []

    def chunks_then_delete(ids):
        found = read_chunks(ids)
        if not deleted:
            deleted.append(assistant.remove(news).status)
        return found

    index.chunks = chunks_then_delete  # a real remove() commits between the two reads
    hits = assistant.search("ivonescimab progression-free survival HARMONi-A", k=5).hits
    assert deleted == ["removed"]
    assert hits and all(h.provenance.doc_id != news for h in hits)


def test_zscore_fusion_keeps_score_gaps_and_floors_missing_scores() -> None:
    dense = {1: 0.80, 2: 0.79, 3: 0.20}
    lexical = {2: 9.0, 4: 30.0}
    fused = dict(zscore_fusion([(dense, 1.0, None), (lexical, 1.0, 0.0)]))
    assert set(fused) == {1, 2, 3, 4}
    # 4 is BM25's landslide (no dense score: floored at the dense list's minimum), 2 is near
    # the top of both; RRF would rank 2 first and put 1 (dense #1) level with 4 (lexical #1).
    assert sorted(fused, key=lambda i: -fused[i])[:2] == [2, 4]
    assert fused[1] > fused[3]
    # A zero weight drops a run; one run alone keeps its own order.
    alone = zscore_fusion([(dense, 1.0, None), (lexical, 0.0, 0.0)])
    assert [i for i, _ in alone] == [1, 2, 3]
    assert zscore_fusion([({}, 1.0, None)]) == []


def test_rrf_fusion_setting_is_still_available(seed_index) -> None:
    from rag.settings import RetrieveSettings

    retriever = seed_index.retriever
    saved = retriever.settings
    try:
        retriever.settings = RetrieveSettings(fusion="rrf")
        rrf_hits = retriever.run("pfs ivonescimab", k=3).hits
    finally:
        retriever.settings = saved
    z_hits = retriever.run("pfs ivonescimab", k=3).hits
    assert "HARMONi-A" in rrf_hits[0].chunk.text and "HARMONi-A" in z_hits[0].chunk.text
    assert rrf_hits[0].score < 0.1 < z_hits[0].score  # an RRF score vs a sum of z-scores
