"""Faces to people, as arrays: neighbour search (faiss) and single-link grouping under the rule
that two faces of one photo are never one person. No SQL here: ``phototag.people`` feeds it.

Embeddings are L2-normalised, so cosine distance = 1 - dot product."""

import numpy as np


def nearest(queries, base, k):
    """For each query, its ``k`` nearest rows of ``base``: (distances, positions), nearest
    first; position -1 where ``base`` has fewer rows."""
    if len(queries) == 0 or len(base) == 0:
        shape = (len(queries), k)
        return np.full(shape, np.inf, np.float32), np.full(shape, -1, np.int64)
    import faiss

    # faiss.knn reads ``base`` where it lies: no index, no copy of a million faces.
    similarity, position = faiss.knn(np.ascontiguousarray(queries, np.float32),
                                     np.ascontiguousarray(base, np.float32), min(k, len(base)),
                                     metric=faiss.METRIC_INNER_PRODUCT)
    distance = 1.0 - similarity
    distance[position < 0] = np.inf
    return distance, position


def single_link(count, first, second, distance, photo_of):
    """Groups of ``count`` faces joined by the edges (first[i], second[i]) in order of
    ``distance``, never joining two groups that hold faces of one photo (``photo_of``: the
    photo of each face). Returns a group label per face."""
    parent = np.arange(count)
    photos = {i: {photo_of[i]} for i in range(count)}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for e in np.argsort(distance, kind="stable"):
        a, b = root(first[e]), root(second[e])
        if a == b or not photos[a].isdisjoint(photos[b]):
            continue
        if len(photos[a]) < len(photos[b]):
            a, b = b, a
        parent[b] = a
        photos[a] |= photos.pop(b)
    return np.array([root(i) for i in range(count)])


def centroids(vectors, labels):
    """The normalised mean embedding of each label: (labels in order, K×D)."""
    order = np.unique(labels)
    sums = np.zeros((len(order), vectors.shape[1]), np.float64)
    np.add.at(sums, np.searchsorted(order, labels), vectors)
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return order, sums.astype(np.float32)
