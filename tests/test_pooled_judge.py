from components.distill.pooled_judge import pools


def test_a_pool_is_the_union_of_every_alphas_top_depth_in_order_of_first_appearance():
    base = [["a", "b", "c", "d"], ["x", "y", "z", "w"]]
    half = [["b", "e", "a", "f"], ["x", "y", "z", "w"]]
    trained = [["e", "g", "h", "a"], ["w", "v", "x", "y"]]
    assert pools([base, half, trained], 2) == [["a", "b", "e", "g"], ["x", "y", "w", "v"]]
    # a passage only one α ranks below the depth is not judged: the pool is what some α would show
    assert "c" not in pools([base, half, trained], 2)[0]
    assert pools([], 10) == []
