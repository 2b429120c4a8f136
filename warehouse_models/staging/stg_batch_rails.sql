-- Whether the rail that read a batch's events stated fees when it read them, per batch and rail (the store records
-- it at each batch's commit). An event answers by its own batch and rail: a region that moved to another rail, or a
-- rail that later learned to state fees, keeps its earlier events' answer.
SELECT batch_id, source, fees_stated
FROM batch_rails;
