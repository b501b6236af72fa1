-- Where each worker process's derived truth ends (db/truth_marks.py): the row per incarnation that lets another
-- worker publish the minutes of a process that was killed. Applied at first use, under an advisory lock.

create table if not exists truth_incarnations (
    app_id      text        not null,
    incarnation text        not null,
    truth_from  bigint      not null,
    seen_at     timestamptz not null default now(),
    ended       boolean     not null default false,
    primary key (app_id, incarnation)
);
comment on table truth_incarnations is
    'Per worker process of an APP_ID: where the truth of the records its agents derived stops being published '
    '(epoch ms), when it last said so, and whether its truth is complete (it stopped, or another worker counted '
    'what it left from Kafka).';
