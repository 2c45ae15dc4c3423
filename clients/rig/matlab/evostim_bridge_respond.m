function evostim_bridge_respond(folder, number, body_json)
% EVOSTIM_BRIDGE_RESPOND  Hand generation NUMBER's responses to the file bridge: BODY_JSON is the text of the
% HTTP post's body ({"responses": [...]}, docs/protocol.md). The file appears whole (written beside, then renamed),
% and an earlier error.json is removed first: it spoke of the file this one replaces.
  generation = fullfile(folder, sprintf('gen_%04d', number));
  error_file = fullfile(folder, 'error.json');
  if exist(error_file, 'file'), delete(error_file); end
  partial = fullfile(generation, '.responses.json.partial');
  fid = fopen(partial, 'w');
  if fid < 0, error('evostim:bridge', 'cannot write in %s', generation); end
  fwrite(fid, body_json);
  fclose(fid);
  movefile(partial, fullfile(generation, 'responses.json'), 'f');
end
