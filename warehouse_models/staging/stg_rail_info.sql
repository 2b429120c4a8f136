-- Whether each rail states fees in its files, by format name (the events' `source`): from each rail's reader (and
-- the region files' inline rails), written by the store on open. An event answers by its own rail, so a region
-- that changed rails keeps each event's answer.
SELECT source, fees_stated
FROM rail_info;
