"""Datasets: annotation readers, AU-code parsing, frame decoding, clip sampling, optical flow, the cache, SynME.

Data flows one way: `index.load_index` (sheet → index) → `cache.prepare_dataset` (decode once, cache) →
`clips.sample_batch` (a training or test batch). Nothing is imported here, so that importing one module of the
package does not import them all.
"""
