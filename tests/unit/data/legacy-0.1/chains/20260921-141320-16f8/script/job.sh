#!/bin/bash
#SBATCH --job-name=legacy
echo hi
