-- A pipeline's incarnation: a random id given when the pipeline is created and kept by its
-- updates. A pipeline deleted and created again under its name starts again at version 1, so
-- only (version, incarnation) names one declaration. The statement that locks a pipeline for a
-- start returns both, which lets the engine check a cached latest definition without reading it.
ALTER TABLE pipelines ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
UPDATE pipelines SET incarnation = lower(hex(randomblob(16)));
