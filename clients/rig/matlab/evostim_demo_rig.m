function evostim_demo_rig(base_url, generations, out_file)
% EVOSTIM_DEMO_RIG  A scripted rig: 3 channels, 4 repetitions, one aborted trial per generation, one deliberate
% re-post of a block (as after a timeout). Writes what it saw as JSON to OUT_FILE.
  channels = {'ch1', 'ch2', 'ch3'};
  created = evostim_create_session(base_url, ...
    '{"population_size": 6, "seed": 11, "channels": ["ch1", "ch2", "ch3"], "references": {"builtin": 2}}');
  manifest = created.generation;
  session_id = created.session.id;
  accepted = [];
  for g = 1:generations
    [images, ~] = evostim_images(base_url, manifest, fullfile(tempdir(), session_id, sprintf('gen%d', g)));
    ids = {manifest.stimuli.id};
    measured = ids(2:end);                         % the first trial was aborted
    counts = zeros(numel(measured), numel(channels), 4);
    for i = 1:numel(measured)
      brightness = mean(double(images{i + 1}(:))) / 255;
      for c = 1:numel(channels)
        counts(i, c, :) = round(20 * brightness * c) + (0:3);
      end
    end
    key = sprintf('%s-block-%d', session_id, g);
    answer = evostim_post_responses(base_url, manifest, measured, channels, counts, key);
    if g == 1
      again = evostim_post_responses(base_url, manifest, measured, channels, counts, key);  % a retry
      assert(again.accepted.measured == answer.accepted.measured);
    end
    accepted(end + 1) = answer.accepted.measured;
    manifest = answer.next;
  end
  fid = fopen(out_file, 'w');
  fprintf(fid, '{"session": "%s", "accepted": [%s], "image_size": %d}', session_id, ...
          strjoin(arrayfun(@num2str, accepted, 'UniformOutput', false), ','), size(images{1}, 1));
  fclose(fid);
end
