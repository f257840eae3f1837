-- What usage can be broken down by, besides the day: the model a token count is for, and the member.
ALTER TABLE usage_events ADD COLUMN model text;
ALTER TABLE usage_events ADD COLUMN user_id uuid;
