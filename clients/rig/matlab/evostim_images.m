function [images, files] = evostim_images(base_url, manifest, folder)
% EVOSTIM_IMAGES  Download a generation's images into FOLDER; returns them (cell of H x W x 3 uint8) in the
% order of manifest.stimuli, and their file names.
  if ~exist(folder, 'dir'), mkdir(folder); end
  stimuli = manifest.stimuli;
  images = cell(1, numel(stimuli)); files = cell(1, numel(stimuli));
  for i = 1:numel(stimuli)
    files{i} = fullfile(folder, [stimuli(i).id '.png']);
    token = getenv('EVOSTIM_TOKEN');
    if exist('OCTAVE_VERSION', 'builtin')
      auth = ''; if ~isempty(token), auth = sprintf(' -H "Authorization: Bearer %s"', token); end
      status = system(sprintf('curl -sS -f%s -o "%s" "%s%s"', auth, files{i}, base_url, stimuli(i).url));
      if status ~= 0, error('evostim:image', 'could not fetch %s', stimuli(i).url); end
    else
      options = weboptions('HeaderFields', {'Authorization', ['Bearer ' token]});
      websave(files{i}, [base_url stimuli(i).url], options);
    end
    images{i} = imread(files{i});
  end
end
