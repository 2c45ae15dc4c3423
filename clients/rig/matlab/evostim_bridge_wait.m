function manifest = evostim_bridge_wait(folder, number, timeout_s)
% EVOSTIM_BRIDGE_WAIT  Wait for generation NUMBER from the file bridge (`evostim rig --watch FOLDER`); returns its
% manifest (manifest.stimuli(i).file are the image files in FOLDER/gen_NNNN, manifest.order the presentation order,
% manifest.status is 'running'). Returns at once, with manifest.status 'finished' or 'stopped' and no stimuli, when
% the bridge's FOLDER/status.json says the session finished (no more generations come) or was stopped (call again
% to wait for its resume).
% Raises evostim:bridge when the bridge's FOLDER/error.json says the rig must act (its responses file was refused:
% fix it and write it again with evostim_bridge_respond) or the operator must (unknown session, refused token).
% While the bridge retries by itself (server unreachable) it warns once per new reason and keeps waiting; after
% TIMEOUT_S seconds (default 600) it raises, naming the last reason.
  if nargin < 3, timeout_s = 600; end
  manifest_file = fullfile(folder, sprintf('gen_%04d', number), 'manifest.json');
  error_file = fullfile(folder, 'error.json');
  status_file = fullfile(folder, 'status.json');
  reason = '';
  started = tic();
  while true
    if exist(manifest_file, 'file')
      manifest = jsondecode(fileread(manifest_file));
      manifest.status = 'running';
      return;
    end
    state = read_report(status_file);
    if ~isempty(state) && any(strcmp(state.status, {'finished', 'stopped'}))
      manifest = struct('session', state.session, 'number', number, 'status', state.status, ...
                        'detail', state.detail, 'stimuli', [], 'order', {{}});
      return;
    end
    report = read_report(error_file);
    if ~isempty(report)
      if ~strcmp(report.action, 'none')
        error('evostim:bridge', 'the bridge needs the %s to act: %s', report.action, report.detail);
      end
      if ~strcmp(reason, report.detail)
        reason = report.detail;
        warning('evostim:bridge', 'the bridge is retrying: %s', reason);
      end
    end
    if toc(started) > timeout_s
      if isempty(reason), reason = 'no error reported: is `evostim rig` running on this folder?'; end
      error('evostim:bridge', 'no generation %d after %g s; %s', number, timeout_s, reason);
    end
    pause(0.1);
  end
end

function report = read_report(file)
  report = [];
  if ~exist(file, 'file'), return; end
  try
    report = jsondecode(fileread(file));  % written whole (renamed into place), or removed meanwhile
  catch
    report = [];
  end
end
