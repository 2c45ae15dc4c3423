function answer = evostim_post_responses(base_url, manifest, stimulus_ids, channels, counts, key)
% EVOSTIM_POST_RESPONSES  Post spike counts of one generation; returns the answer (answer.next: the next manifest).
%   stimulus_ids: cell of the measured stimuli's ids (leave out aborted trials)
%   channels:     cell of channel names
%   counts:       numeric array, stimuli x channels x repetitions
%   key:          Idempotency-Key; re-posting the same key and body after a timeout is safe (counted once)
  items = cell(1, numel(stimulus_ids));
  for i = 1:numel(stimulus_ids)
    per_channel = cell(1, numel(channels));
    for c = 1:numel(channels)
      values = sprintf('%.10g,', squeeze(counts(i, c, :)));
      per_channel{c} = sprintf('"%s": [%s]', channels{c}, values(1:end-1));
    end
    items{i} = sprintf('{"stimulus": "%s", "counts": {%s}}', stimulus_ids{i}, strjoin(per_channel, ', '));
  end
  body = sprintf('{"responses": [%s]}', strjoin(items, ', '));
  answer = evostim_request('POST', [base_url manifest.responses_url], body, {'Idempotency-Key', key});
end
