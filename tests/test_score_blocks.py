"""How ranker scoring splits its pairs into Ray Data blocks: small enough that the progress bar
moves a block at a time, enough of them that every actor gets work."""

from components.ranker import score_blocks


def test_a_stage2_sized_job_comes_back_in_blocks_of_a_few_calls():
    # run 27's Stage 2: 2,590 lists x 20 candidates, 64 pairs a forward pass, 2 actors
    blocks = score_blocks(51_800, 64, 2)
    assert -(-51_800 // blocks) <= 64 * 4 * 4  # at most four actor calls of 256 pairs per block
    assert blocks > 2 * 4  # the old split (actors x 4) held 6,475 pairs a block


def test_a_small_job_still_spreads_over_every_actor():
    assert score_blocks(1_000, 64, 2) == 8
    assert score_blocks(5, 64, 2) == 5  # never an empty block
    assert score_blocks(0, 64, 2) == 1
