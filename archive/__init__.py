"""The cold tier: monthly Parquet archive and raw journal archive (see docs/archive.md).

Modules: ``layout`` (months, Hive keys), ``manifest`` (manifest/index formats),
``catalog`` (reading/writing them at a target), ``target``/``local_target``/``b2_target``
(where files go), ``parquet_files`` (the sorted zstd writer), ``source`` (the
``ArchiveSource``/``ArchiveSink`` protocols), ``memory``/``replay_source``/``postgres``
(implementations), ``export``, ``verify``, ``restore``, ``journal``, ``retention``,
``synthetic``/``bench``, ``cli``, ``errors``.
"""
